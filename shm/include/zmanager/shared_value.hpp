// zmanager::shared_value / shared_array: Python's multiprocessing.Value and Array for C++
// processes made by fork: plain values in a shared mapping, with an optional lock that lives
// in the mapping too and survives a holder that dies.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "zmanager/errors.hpp"

namespace zmanager {

namespace detail {
struct SharedBlockHeader;
}

/// The lock of a shared value or array: recursive (as Python's default RLock), shared between
/// processes, and robust: when a process dies holding it, the next lock() takes it over (the
/// value may be half-updated then; recovered() counts such take-overs). Lockable, so
/// std::lock_guard and std::unique_lock work with it.
class SharedLock {
 public:
  void lock();
  bool try_lock();
  /// false if the lock was not taken within `timeout`.
  bool try_lock_for(std::chrono::nanoseconds timeout);
  void unlock();
  /// How many times a holder died holding the lock and a locker took it over.
  std::uint64_t recovered() const;

 private:
  friend class SharedBlock;
  explicit SharedLock(detail::SharedBlockHeader* header) : header_(header) {}
  bool took(int rc);
  detail::SharedBlockHeader* header_;
};

/// Memory shared with the processes this one forks from now on (an anonymous shared mapping:
/// it goes away with the last process that maps it, nothing to unlink).
class SharedBlock {
 public:
  SharedBlock(std::size_t bytes, bool with_lock);
  ~SharedBlock();
  SharedBlock(const SharedBlock&) = delete;
  SharedBlock& operator=(const SharedBlock&) = delete;

  std::byte* data() const { return data_; }
  std::size_t size() const { return bytes_; }
  /// The lock; ValueError if the block was made without one.
  SharedLock& lock();
  bool has_lock() const { return has_lock_; }

 private:
  void* mapping_ = nullptr;
  std::size_t mapped_ = 0;
  std::byte* data_ = nullptr;
  std::size_t bytes_ = 0;
  bool has_lock_ = false;
  SharedLock lock_{nullptr};
};

/// A fixed-size array of T shared with forked children. Copies share the same array.
/// get()/set()/to_vector() take the lock when there is one, as Python's synchronized wrapper.
template <class T>
requires std::is_trivially_copyable_v<T>
class SharedArray {
 public:
  SharedArray(std::size_t size, bool lock)
      : block_(std::make_shared<SharedBlock>(size * sizeof(T), lock)), size_(size) {}
  SharedArray(std::initializer_list<T> items, bool lock = true) : SharedArray(items.size(), lock) {
    std::memcpy(block_->data(), items.begin(), items.size() * sizeof(T));
  }

  std::size_t size() const { return size_; }
  T get(std::size_t i) const {
    Guard g(*block_);
    return raw()[checked(i)];
  }
  void set(std::size_t i, T value) {
    Guard g(*block_);
    raw()[checked(i)] = value;
  }
  std::vector<T> to_vector() const {
    Guard g(*block_);
    return {raw().begin(), raw().end()};
  }
  SharedLock& get_lock() { return block_->lock(); }
  /// The elements without the lock (Python's get_obj()).
  std::span<T> raw() const { return {reinterpret_cast<T*>(block_->data()), size_}; }

 private:
  // Holds the lock, if the block has one, for one access.
  class Guard {
   public:
    explicit Guard(SharedBlock& b) : lock_(b.has_lock() ? &b.lock() : nullptr) {
      if (lock_) lock_->lock();
    }
    ~Guard() {
      if (lock_) lock_->unlock();
    }
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;

   private:
    SharedLock* lock_;
  };
  std::size_t checked(std::size_t i) const {
    if (i >= size_) throw IndexError("array index out of range");
    return i;
  }
  template <class U>
  requires std::is_trivially_copyable_v<U>
  friend class SharedValue;

  std::shared_ptr<SharedBlock> block_;
  std::size_t size_;
};

/// One T shared with forked children (an array of one). `update(f)` runs f(T&) under the lock:
/// the atomic read-modify-write Python spells `with v.get_lock(): v.value += 1`.
template <class T>
requires std::is_trivially_copyable_v<T>
class SharedValue {
 public:
  explicit SharedValue(T initial = T{}, bool lock = true) : array_({initial}, lock) {}
  T get() const { return array_.get(0); }
  void set(T value) { array_.set(0, value); }
  template <class F>
  T update(F&& f) {
    typename SharedArray<T>::Guard g(*array_.block_);
    T& v = array_.raw()[0];
    f(v);
    return v;
  }
  SharedLock& get_lock() { return array_.get_lock(); }
  T* raw() const { return array_.raw().data(); }

 private:
  SharedArray<T> array_;
};

template <class T>
SharedValue<T> shared_value(T initial, bool lock = true) {
  return SharedValue<T>(initial, lock);
}
template <class T>
SharedArray<T> shared_array(std::initializer_list<T> items, bool lock = true) {
  return SharedArray<T>(items, lock);
}

}  // namespace zmanager
