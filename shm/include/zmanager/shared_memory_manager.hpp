// zmanager::SharedMemoryManager: Python's SharedMemoryManager. A manager whose server keeps
// the names of the segments made through it and unlinks them when it stops; one killed before
// it could leaves a journal the next start reads to remove them.
#pragma once

#include <string>
#include <vector>

#include "zmanager/manager.hpp"
#include "zmanager/shareable_list.hpp"
#include "zmanager/shared_memory.hpp"

namespace zmanager {

/// start() (or get_server().serve_forever()) runs the server, connect() joins one. Segments made
/// with SharedMemory()/ShareableList() are created in the calling process, under fresh names,
/// and tracked by the server; at its shutdown it unlinks every one (mappings already open stay
/// valid). The server writes the names it tracks to a journal in /dev/shm
/// (`zmanager_smm_<pid>_<start time>`); start(), get_server() and remove_leftovers() remove the
/// segments of journals whose server process is gone (killed, say), and the journals.
class SharedMemoryManager : public BaseManager {
 public:
  explicit SharedMemoryManager(ManagerOptions options = {});

  /// Removes leftovers first, then as BaseManager::start().
  void start();
  Server& get_server();

  /// A new tracked segment of `size` bytes.
  zmanager::SharedMemory SharedMemory(std::int64_t size);
  /// A new tracked list (see ShareableList).
  zmanager::ShareableList ShareableList(const std::vector<Value>& items);
  template <class Range>
  requires requires(const Range& r) { Value(*std::begin(r)); }
  zmanager::ShareableList ShareableList(const Range& items) {
    return ShareableList(std::vector<Value>(std::begin(items), std::end(items)));
  }
  /// The names the server tracks.
  std::vector<std::string> segments();
  /// Unlinks a tracked segment now and stops tracking it.
  void release(const std::string& name);

  /// Unlinks the segments of every journal whose server process no longer runs, removes those
  /// journals, and returns the names of the segments it removed.
  static std::vector<std::string> remove_leftovers();

 private:
  /// Has the server track a segment just made here; unlinks it if that fails.
  void track(zmanager::SharedMemory& made);
};

}  // namespace zmanager
