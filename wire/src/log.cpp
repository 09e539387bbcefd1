#include "zmanager/wire/log.hpp"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>

namespace zmanager::log {
namespace {

Level level_from_env() {
  const char* v = std::getenv("ZMANAGER_LOG_LEVEL");
  if (!v) return Level::kWarn;
  if (!std::strcmp(v, "error")) return Level::kError;
  if (!std::strcmp(v, "info")) return Level::kInfo;
  if (!std::strcmp(v, "debug")) return Level::kDebug;
  return Level::kWarn;
}

std::atomic<Level>& current() {
  static std::atomic<Level> lvl{level_from_env()};
  return lvl;
}

}  // namespace

Level level() {
  return current().load(std::memory_order_relaxed);
}
void set_level(Level lvl) {
  current().store(lvl, std::memory_order_relaxed);
}

void write(Level lvl, std::string_view line) {
  static constexpr const char* kNames[] = {"error", "warn", "info", "debug"};
  std::string text = "zmanager[" + std::to_string(::getpid()) + "] " +
                     kNames[static_cast<int>(lvl)] + ": " + std::string(line) + "\n";
  // One write() per line so that lines from several threads or processes do not interleave.
  [[maybe_unused]] auto n = ::write(STDERR_FILENO, text.data(), text.size());
}

}  // namespace zmanager::log
