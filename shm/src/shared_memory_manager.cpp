#include "zmanager/shared_memory_manager.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>

#include "zmanager/errors.hpp"

namespace zmanager {

namespace {

constexpr const char* kTrackerName = "zmanager.shared_memory_tracker";
constexpr const char* kJournalDir = "/dev/shm/";
constexpr std::string_view kJournalPrefix = "zmanager_smm_";

/// A process's start time in clock ticks since boot (field 22 of /proc/PID/stat): with the pid,
/// it names a process uniquely even after the pid is reused. Empty if the process is gone.
std::string start_time_of(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  auto paren = text.rfind(')');  // the command name may hold spaces and parentheses
  if (paren == std::string::npos) return {};
  std::istringstream fields(text.substr(paren + 1));
  std::string field;
  for (int i = 3; i <= 22 && fields >> field; ++i) {
    if (i == 22) return field;
  }
  return {};
}

/// A segment name a client may ask the server to track: what SharedMemory accepts, without
/// any path trick (no '/', not "." or "..").
void check_segment_name(const std::string& name) {
  if (name.empty() || name.size() > 255 || name.find('/') != std::string::npos ||
      name.find('\0') != std::string::npos || name == "." || name == "..")
    throw ValueError("not a shared memory segment name: '" + name + "'");
}

/// The server's side: the tracked names, mirrored in a journal file.
class SegmentTracker {
 public:
  SegmentTracker() = default;
  SegmentTracker(const SegmentTracker&) = delete;
  SegmentTracker& operator=(const SegmentTracker&) = delete;

  void track(const std::string& name) {
    check_segment_name(name);
    std::lock_guard lock(mu_);
    if (!names_.insert(name).second) return;
    write_journal();
  }

  void release(const std::string& name) {
    check_segment_name(name);
    std::lock_guard lock(mu_);
    if (names_.erase(name) == 0) throw KeyError("segment '" + name + "' is not tracked here");
    write_journal();
    if (::shm_unlink(("/" + name).c_str()) != 0) throw_os_error(errno, name);
  }

  std::vector<std::string> segments() const {
    std::lock_guard lock(mu_);
    return {names_.begin(), names_.end()};
  }

  /// At the server's stop: every tracked segment unlinked, then the journal removed.
  void unlink_all() {
    std::lock_guard lock(mu_);
    for (const auto& name : names_) ::shm_unlink(("/" + name).c_str());
    names_.clear();
    if (!journal_.empty()) ::unlink(journal_.c_str());
    journal_.clear();
  }

 private:
  // Rewritten whole (small: one name a line) through a temporary file and a rename, so that a
  // server killed mid-write leaves the old journal or the new one, never half of one.
  void write_journal() {
    if (journal_.empty()) {
      pid_t pid = ::getpid();
      journal_ = std::string(kJournalDir) + std::string(kJournalPrefix) + std::to_string(pid) +
                 "_" + start_time_of(pid);
    }
    std::string temporary = journal_ + ".new";
    {
      std::ofstream out(temporary, std::ios::trunc);
      for (const auto& name : names_) out << name << '\n';
      if (!out) throw OSError("cannot write the segment journal " + temporary);
    }
    if (::rename(temporary.c_str(), journal_.c_str()) != 0) throw_os_error(errno, journal_);
  }

  mutable std::mutex mu_;
  std::set<std::string> names_;
  std::string journal_;
};

}  // namespace
}  // namespace zmanager

ZMANAGER_EXPOSE(zmanager::SegmentTracker, track, release, segments)

namespace zmanager {

SharedMemoryManager::SharedMemoryManager(ManagerOptions options) : BaseManager(std::move(options)) {
  auto tracker = std::make_shared<SegmentTracker>();
  register_shared(kTrackerName, tracker);
  // Runs in the serving process, whose copy of the registry holds this same tracker.
  at_server_stop([tracker] { tracker->unlink_all(); });
}

void SharedMemoryManager::start() {
  remove_leftovers();
  BaseManager::start();
}

Server& SharedMemoryManager::get_server() {
  remove_leftovers();
  return BaseManager::get_server();
}

void SharedMemoryManager::track(zmanager::SharedMemory& made) {
  try {
    get_shared<SegmentTracker>(kTrackerName).track(made.name());
  } catch (...) {
    made.unlink();  // not left behind untracked
    throw;
  }
}

zmanager::SharedMemory SharedMemoryManager::SharedMemory(std::int64_t size) {
  zmanager::SharedMemory shm(std::nullopt, true, size);
  track(shm);
  return shm;
}

zmanager::ShareableList SharedMemoryManager::ShareableList(const std::vector<Value>& items) {
  zmanager::ShareableList list(items);
  track(list.shm());
  return list;
}

std::vector<std::string> SharedMemoryManager::segments() {
  return get_shared<SegmentTracker>(kTrackerName).segments();
}

void SharedMemoryManager::release(const std::string& name) {
  get_shared<SegmentTracker>(kTrackerName).release(name);
}

std::vector<std::string> SharedMemoryManager::remove_leftovers() {
  std::vector<std::string> removed;
  std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir(kJournalDir), ::closedir);
  if (!dir) return removed;
  std::vector<std::string> stale;
  while (const dirent* entry = ::readdir(dir.get())) {
    std::string file = entry->d_name;
    if (!file.starts_with(kJournalPrefix) || file.ends_with(".new")) continue;
    // zmanager_smm_<pid>_<start time>: stale when that process is gone (or the pid was reused).
    std::string rest = file.substr(kJournalPrefix.size());
    auto sep = rest.find('_');
    if (sep == std::string::npos) continue;
    pid_t pid = 0;
    try {
      pid = static_cast<pid_t>(std::stol(rest.substr(0, sep)));
    } catch (const std::exception&) {
      continue;
    }
    if (pid <= 0 || start_time_of(pid) == rest.substr(sep + 1)) continue;
    stale.push_back(file);
  }
  for (const auto& file : stale) {
    std::string path = kJournalDir + file;
    std::ifstream in(path);
    for (std::string name; std::getline(in, name);) {
      if (name.empty() || name.find('/') != std::string::npos) continue;
      if (::shm_unlink(("/" + name).c_str()) == 0) removed.push_back(name);
    }
    ::unlink(path.c_str());
    ::unlink((path + ".new").c_str());
  }
  return removed;
}

}  // namespace zmanager
