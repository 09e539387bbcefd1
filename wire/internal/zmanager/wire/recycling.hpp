// An allocator for objects made and dropped once per call (internal).
//
// Pipelined calls make their per-call objects in bursts: a BATCH of 32 calls, a poll step of 64
// replies. glibc's per-thread cache keeps 7 freed blocks of a size; the rest of a burst takes
// malloc's slower paths, which callgrind showed at 150-300 instructions per allocation and as
// much per free. Blocks freed through this allocator are kept on a list of the freeing thread's
// and handed out again by it, up to a bound. A block may be made on one thread and kept by
// another: it is plain memory by then.
#pragma once

#include <cstddef>
#include <new>
#include <vector>

namespace zmanager::wire {

namespace detail {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define ZMANAGER_RECYCLING_OFF 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define ZMANAGER_RECYCLING_OFF 1
#endif
#endif

/// The calling thread's spare blocks of `Size` bytes.
template <std::size_t Size>
class SpareBlocks {
 public:
  static void* take() {
#ifndef ZMANAGER_RECYCLING_OFF  // sanitizers see every allocation and free as it is
    if (!gone_) {
      auto& blocks = list().blocks;
      if (!blocks.empty()) {
        void* block = blocks.back();
        blocks.pop_back();
        return block;
      }
    }
#endif
    return ::operator new(Size);
  }

  static void give(void* block) {
#ifndef ZMANAGER_RECYCLING_OFF
    // A thread that keeps a burst's worth of blocks keeps enough; one that is ending (its list
    // destroyed) frees them.
    constexpr std::size_t kMostKept = 256;
    if (!gone_) {
      auto& blocks = list().blocks;
      if (blocks.size() < kMostKept) {
        if (blocks.capacity() == 0) blocks.reserve(kMostKept);
        blocks.push_back(block);
        return;
      }
    }
#endif
    ::operator delete(block);
  }

 private:
  struct List {
    std::vector<void*> blocks;
    ~List() {
      gone_ = true;
      for (void* block : blocks) ::operator delete(block);
    }
  };
  static List& list() {
    thread_local List spare;
    return spare;
  }
  static inline thread_local bool gone_ = false;
};

}  // namespace detail

/// For std::vector: arrays of up to `Kept` elements come from the same spare blocks, a block
/// of `Kept` elements each, so that the small vectors a message makes and drops (its frames:
/// one, or a routing id and a body) cost no malloc or free.
template <class T, std::size_t Kept>
class RecyclingArray {
 public:
  using value_type = T;
  template <class U>
  struct rebind {
    using other = RecyclingArray<U, Kept>;
  };
  RecyclingArray() = default;
  template <class U>
  RecyclingArray(const RecyclingArray<U, Kept>&) noexcept {}

  T* allocate(std::size_t n) {
    static_assert(alignof(T) <= __STDCPP_DEFAULT_NEW_ALIGNMENT__);
    if (n > Kept) return static_cast<T*>(::operator new(n * sizeof(T)));
    return static_cast<T*>(detail::SpareBlocks<Kept * sizeof(T)>::take());
  }
  void deallocate(T* block, std::size_t n) {
    if (n > Kept) return ::operator delete(block);
    detail::SpareBlocks<Kept * sizeof(T)>::give(block);
  }

  template <class U>
  bool operator==(const RecyclingArray<U, Kept>&) const noexcept {
    return true;
  }
};

/// For std::allocate_shared: one object (with its control block) per allocation, kept for reuse
/// by the thread that frees it.
template <class T>
using Recycling = RecyclingArray<T, 1>;

}  // namespace zmanager::wire
