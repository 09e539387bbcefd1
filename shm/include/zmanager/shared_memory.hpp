// Same-host shared memory with Python's rules (multiprocessing.shared_memory.SharedMemory): a
// segment made by one process and attached by name in others, C++ or Python alike.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

namespace zmanager {

/// A POSIX shared-memory segment mapped into this process.
///
/// `SharedMemory(std::nullopt, true, n)` creates a segment of `n` bytes under a fresh name
/// ("psm_" and 8 hex digits); `SharedMemory("name", true, n)` creates it under that name
/// (FileExistsError if it exists); `SharedMemory("name")` attaches to an existing one
/// (FileNotFoundError if there is none) and takes its size from the segment. Names are given
/// without the leading '/' POSIX adds, as in Python. `size <= 0` on create is a ValueError.
///
/// Destruction unmaps (as `close()`); it never removes the segment: one process calls
/// `unlink()` when every user is done, as in Python. A Python process that attaches to a
/// segment removes it when it exits unless it unregisters it from its resource tracker
/// (Python < 3.13; see docs/shared-memory.md).
class SharedMemory {
 public:
  explicit SharedMemory(std::optional<std::string> name = std::nullopt, bool create = false,
                        std::int64_t size = 0);
  ~SharedMemory();
  SharedMemory(SharedMemory&& other) noexcept;
  SharedMemory& operator=(SharedMemory&& other) noexcept;
  SharedMemory(const SharedMemory&) = delete;
  SharedMemory& operator=(const SharedMemory&) = delete;

  /// The segment's name, without the leading '/'.
  const std::string& name() const noexcept { return name_; }
  /// The mapped size in bytes (the segment's size when attached).
  std::size_t size() const noexcept { return size_; }
  /// The mapped bytes; ValueError once closed.
  std::span<std::byte> buf() const;
  bool closed() const noexcept { return data_ == nullptr; }

  /// Unmaps the segment in this process (idempotent); other processes keep theirs.
  void close() noexcept;
  /// Removes the name so no one else can attach; mapped views stay valid until closed.
  /// A second unlink of the same name is a FileNotFoundError.
  void unlink();

 private:
  std::string name_;
  std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace zmanager
