// Minimal leveled logging to stderr, shared by server and client internals. The level comes from
// ZMANAGER_LOG_LEVEL (error, warn, info, debug); default warn.
#pragma once

#include <sstream>
#include <string_view>

namespace zmanager::log {

enum class Level { kError = 0, kWarn = 1, kInfo = 2, kDebug = 3 };

Level level();
void set_level(Level level);
void write(Level level, std::string_view line);

template <class... A>
void emit(Level lvl, const A&... parts) {
  if (lvl > level()) return;
  std::ostringstream out;
  (out << ... << parts);
  write(lvl, out.str());
}
template <class... A>
void error(const A&... a) {
  emit(Level::kError, a...);
}
template <class... A>
void warn(const A&... a) {
  emit(Level::kWarn, a...);
}
template <class... A>
void info(const A&... a) {
  emit(Level::kInfo, a...);
}
template <class... A>
void debug(const A&... a) {
  emit(Level::kDebug, a...);
}

}  // namespace zmanager::log
