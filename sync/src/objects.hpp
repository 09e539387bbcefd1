// The built-in shared types as the server holds them: Python's SyncManager classes, with every
// value a zmanager::Value so that any client (typed C++, dynamic, another language) sees the
// same data. The method names and parameters here are the wire interface that
// docs/protocol.md documents; the typed proxies in <zmanager/sync.hpp> call them by name.
#pragma once

#include <sys/mman.h>

#include <climits>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "waiting.hpp"
#include "zmanager/expose.hpp"
#include "zmanager/value.hpp"

namespace zmanager::sync {

using Int = std::int64_t;
using Seconds = std::optional<double>;

/// Python's `<` exists between numbers (bool included) and between values of one kind; ordering
/// anything else (a sort, a PriorityQueue) is a TypeError there, and here.
void check_comparable(const Value& a, const Value& b);

// ---- containers ----

/// Maps big arrays (a dict's entry and slot tables) straight from the kernel and gives them back
/// when freed. From the heap, a table freed by a resize would stay in the RSS: glibc raises its
/// mmap threshold to the size of each mapped block freed, so after a few resizes the next
/// tables come from the heap and their freed space is kept (a dict of 1,000,000 ints grew the
/// RSS by 58 MiB instead of about 48).
template <class T>
struct LargeArrayAllocator {
  using value_type = T;
  static constexpr std::size_t kMappedBytes = std::size_t{1} << 20;
  LargeArrayAllocator() = default;
  template <class U>
  LargeArrayAllocator(const LargeArrayAllocator<U>&) noexcept {}
  T* allocate(std::size_t n) {
    std::size_t bytes = n * sizeof(T);
    if (bytes < kMappedBytes) return std::allocator<T>().allocate(n);
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    return static_cast<T*>(p);
  }
  void deallocate(T* p, std::size_t n) noexcept {
    std::size_t bytes = n * sizeof(T);
    if (bytes < kMappedBytes)
      std::allocator<T>().deallocate(p, n);
    else
      ::munmap(p, bytes);
  }
  template <class U>
  bool operator==(const LargeArrayAllocator<U>&) const noexcept {
    return true;
  }
};

/// Python's dict: insertion-ordered, keys compared and hashed as Python does (1 == 1.0). Laid out
/// as CPython's compact dict: the entries in one vector in insertion order, and an open-addressing
/// table of 32-bit indices into it (a node-based map cost twice the memory per entry).
class DictObject {
 public:
  explicit DictObject(const Value& initial);
  Value getitem(const Value& key) const;
  void setitem(Value key, Value value);
  void delitem(const Value& key);
  Value get(const Value& key, Value fallback) const;
  bool contains(const Value& key) const;
  Int len() const;
  Value::Array keys() const;
  Value::Array values() const;
  Value::Array items() const;
  Value pop(const Value& key);
  Value pop_or(const Value& key, Value fallback);
  Value::Array popitem();
  Value setdefault(Value key, Value fallback);
  void update(const Value& pairs);
  void clear();
  Value copy() const;  // a map on the wire

 private:
  struct Entry {
    Value key;
    Value value;
    // No stored hash (CPython keeps one): 32 bytes instead of 40 per entry, for a hash
    // recomputed when the table is resized and a key comparison where CPython compares hashes
    // first.
  };
  static constexpr std::uint32_t kEmpty = 0, kDummy = UINT32_MAX;  // else: entry index + 1

  static std::size_t hash_of(const Value& key);
  /// The slot holding `key`, or where it would go (the first deleted slot on its probe path,
  /// else the empty one that ended it); `found` says which.
  std::size_t probe(const Value& key, std::size_t hash, bool& found) const;
  /// The entry holding `key`, or nullptr.
  const Entry* find(const Value& key) const;
  /// `take(entry)` of every live entry, in insertion order.
  template <class Out, class Take>
  Out collect(Take take) const {
    Out out;
    out.reserve(live_);
    for (std::size_t n = 0; n < entries_.size(); ++n)
      if (!removed_[n]) out.push_back(take(entries_[n]));
    return out;
  }
  /// Removes the entry behind `slot` and returns its value.
  Value remove_at(std::size_t slot);
  /// Makes room for one more entry: a bigger table, or the same size rebuilt without the
  /// deleted entries.
  void reserve_one();
  void rebuild(std::size_t capacity);

  std::vector<Entry, LargeArrayAllocator<Entry>> entries_;  // insertion order; deleted ones
                                                            // stay until a rebuild
  std::vector<bool> removed_;  // per entry: deleted (its slot then says kDummy)
  std::vector<std::uint32_t, LargeArrayAllocator<std::uint32_t>> slots_;  // a power of two, or 0
  std::size_t live_ = 0;
  std::size_t used_slots_ = 0;  // live + dummy
};

/// Python's list.
class ListObject {
 public:
  explicit ListObject(const Value& initial);
  Value getitem(Int index) const;
  void setitem(Int index, Value value);
  void delitem(Int index);
  Value::Array getslice(std::optional<Int> start, std::optional<Int> stop) const;
  Int len() const;
  void append(Value value);
  void extend(const Value& values);
  void insert(Int index, Value value);
  Value pop(Int index);
  void remove(const Value& value);
  Int index(const Value& value, Int start, Int stop) const;
  Int count(const Value& value) const;
  bool contains(const Value& value) const;
  void reverse();
  void sort(bool descending);
  void imul(Int times);
  Value::Array add(const Value& other) const;
  Value::Array mul(Int times) const;
  Value::Array to_list() const;

 private:
  std::size_t at(Int index, const char* what) const;
  std::vector<Value> items_;
};

/// Python's multiprocessing Value(typecode, v), plus atomic read-modify-write.
class ValueObject {
 public:
  ValueObject(const std::string& typecode, Value initial);
  Value get() const { return value_; }
  void set(Value v);
  Value fetch_add(const Value& delta);
  Value fetch_sub(const Value& delta);
  Value exchange(Value v);
  Value::Array compare_exchange(const Value& expected, Value desired);
  std::string typecode() const { return typecode_; }

 private:
  Value add(const Value& delta, int sign);
  std::string typecode_;
  Value value_;
};

/// Python's multiprocessing Array(typecode, sequence): fixed length, one element kind.
class ArrayObject {
 public:
  ArrayObject(const std::string& typecode, const Value& items);
  Value getitem(Int index) const;
  void setitem(Int index, Value value);
  Value::Array getslice(std::optional<Int> start, std::optional<Int> stop) const;
  Int len() const;
  Value::Array to_list() const;
  std::string typecode() const { return typecode_; }

 private:
  std::string typecode_;
  std::vector<Value> items_;
};

/// Python's Namespace: named attributes.
class NamespaceObject {
 public:
  Value get(const std::string& name) const;
  void set(const std::string& name, Value value);
  void del(const std::string& name);
  bool contains(const std::string& name) const;
  Value items() const;  // a map on the wire

 private:
  std::map<std::string, Value> attributes_;
};

// ---- queues ----

/// queue.Queue, LifoQueue and PriorityQueue (all with task_done/join, as Python's are).
class QueueObject {
 public:
  enum class Order { kFifo, kLifo, kPriority };
  QueueObject(Order order, Int maxsize);

  Deferred<void> put(Value item, bool block, Seconds timeout);
  Deferred<Value> get(bool block, Seconds timeout);
  void put_nowait(Value item);
  Value get_nowait();
  Int qsize() const { return static_cast<Int>(items_.size()); }
  bool empty() const { return items_.empty(); }
  bool full() const;
  Int maxsize() const { return maxsize_; }
  void task_done();
  Deferred<void> join();
  /// Calls parked in get() (for tests and monitoring).
  Int waiting_getters() const { return static_cast<Int>(getters_.live()); }
  /// A session that ended: its parked calls are dropped, and the items it got and had not
  /// marked done count as done (see docs/reliability.md).
  void on_session_end(std::uint64_t session);

 private:
  struct Putter {
    Value item;
    Responder<void> reply;
  };
  void push(Value item);
  Value pop();
  /// Moves items to parked getters and parked puts into freed room, until neither can move.
  void hand_over();
  /// Marks `n` unfinished tasks done; join() returns once none is left.
  void finish_tasks(Int n);

  Order order_;
  Int maxsize_;
  std::deque<Value> items_;  // a min-heap (by Python's <) for a priority queue
  Int unfinished_ = 0;
  SessionDebts undone_;  // items each session got and has not marked done
  WaitList<Responder<Value>> getters_;
  WaitList<Putter> putters_;
  WaitList<Responder<void>> joiners_;
};

// ---- locks and conditions ----

/// Who holds a lock: the client session and the thread in it (a token the client picks per
/// thread). RLock ownership and Condition checks compare both.
struct Holder {
  std::uint64_t session = 0;
  std::uint64_t thread = 0;
  friend bool operator==(const Holder&, const Holder&) = default;
};

/// The state of a Lock or RLock, shared with the Conditions built on it, which run on their own
/// strands: hence its own mutex (held for a few instructions, never while anyone waits).
class LockCore {
 public:
  /// Answers a queued waiter with its hold's fencing token; false if the answer reached nobody
  /// (the call's deadline passed meanwhile), and the lock then goes to the next waiter.
  using Grant = std::function<bool(std::uint64_t token)>;
  /// Whether a queued waiter's caller can still take the lock (its session has not ended).
  using Alive = std::function<bool()>;
  explicit LockCore(bool reentrant) : reentrant_(reentrant) {}

  bool reentrant() const { return reentrant_; }
  /// Takes the lock for `who` (`count` levels of an RLock) if it is free or, for an RLock,
  /// already `who`'s: the hold's fencing token, or nullopt.
  std::optional<std::uint64_t> try_acquire(const Holder& who, std::size_t count = 1);
  /// Queues `who`; `grant` runs (outside the mutex) once the lock is handed to it. Returns an
  /// id for cancel().
  std::uint64_t enqueue(const Holder& who, std::size_t count, Grant grant, Alive alive);
  /// Removes a queued waiter; false if it was granted the lock already.
  bool cancel(std::uint64_t id);
  /// Releases one level. Lock: anyone may release a locked Lock (as in Python); RLock: only the
  /// owner. RuntimeError otherwise.
  void release(const Holder& who);
  /// Releases every level `who` holds (Condition.wait); returns how many, to restore later.
  std::size_t release_all(const Holder& who);
  bool held_by(const Holder& who) const;
  bool locked() const;
  std::size_t waiting() const;
  /// The fencing token of `who`'s hold: a number that grows with every grant of this lock, so
  /// that a resource it guards can refuse a holder whose hold has since been given to another.
  /// RuntimeError if `who` does not hold the lock.
  std::uint64_t token(const Holder& who) const;
  /// Gives up everything `session` has here (it ended): its hold, at every level, and its
  /// queued waits. The next waiter gets the lock.
  void abandon(std::uint64_t session);

 private:
  struct Waiter {
    Holder who;
    std::size_t count;
    Grant grant;
    Alive alive;
  };
  /// Called with mu_ held and the lock free: hands it to the oldest waiter still alive, and
  /// returns what answers that waiter (to run once mu_ is released).
  std::function<void()> hand_to_next_locked();
  /// Called with mu_ held and the lock free.
  void grant_locked(const Holder& who, std::size_t count);
  /// Called with mu_ held: frees the lock; returns what answers the next holder.
  std::function<void()> free_locked();
  /// Gives up `who`'s hold, if it still has it: a grant whose answer could not be delivered.
  void drop(const Holder& who);

  const bool reentrant_;
  mutable std::mutex mu_;
  std::optional<Holder> owner_;
  std::size_t count_ = 0;
  std::uint64_t token_ = 0;  // of the current (or last) grant
  std::uint64_t last_id_ = 0;
  std::map<std::uint64_t, Waiter> waiters_;
};

/// threading.Lock and threading.RLock. Every call names the calling thread's token.
class LockObject {
 public:
  explicit LockObject(bool reentrant) : core_(std::make_shared<LockCore>(reentrant)) {}
  Deferred<bool> acquire(std::uint64_t thread, bool blocking, Seconds timeout);
  void release(std::uint64_t thread);
  bool locked() const { return core_->locked(); }
  bool is_owned(std::uint64_t thread) const;
  /// Calls parked in acquire() (for tests and monitoring).
  Int waiting() const { return static_cast<Int>(core_->waiting()); }
  /// acquire() that answers the hold's fencing token, 0 if it was not acquired.
  Deferred<Int> acquire_token(std::uint64_t thread, bool blocking, Seconds timeout);
  /// The fencing token of the calling thread's hold (RuntimeError if it holds none).
  Int token(std::uint64_t thread) const;
  const std::shared_ptr<LockCore>& core() const { return core_; }
  void on_session_end(std::uint64_t session) { core_->abandon(session); }

 private:
  std::shared_ptr<LockCore> core_;
};

/// threading.Semaphore and threading.BoundedSemaphore.
class SemaphoreObject {
 public:
  SemaphoreObject(Int value, bool bounded);
  Deferred<bool> acquire(bool blocking, Seconds timeout);
  void release(Int n);
  Int get_value() const { return value_; }
  /// The permits the session acquired and no release paid back return; its waits are dropped.
  void on_session_end(std::uint64_t session);

 private:
  /// Adds `n` permits and hands them to waiters.
  void give(Int n);

  Int value_;
  Int initial_;
  bool bounded_;
  SessionDebts held_;  // permits per session
  WaitList<Responder<bool>> waiters_;
};

/// threading.Condition over its own RLock or a given Lock/RLock of this server.
class ConditionObject {
 public:
  explicit ConditionObject(std::shared_ptr<LockCore> lock) : lock_(std::move(lock)) {}
  Deferred<bool> acquire(std::uint64_t thread, bool blocking, Seconds timeout);
  void release(std::uint64_t thread);
  Deferred<bool> wait(std::uint64_t thread, Seconds timeout);
  void notify(std::uint64_t thread, Int n);
  void notify_all(std::uint64_t thread);
  Int waiters() const { return static_cast<Int>(waiters_.live()); }
  void on_session_end(std::uint64_t session);

 private:
  struct Waiter {
    Holder who;
    std::size_t levels;
    std::shared_ptr<Responder<bool>> reply;
  };
  Holder holder(std::uint64_t thread) const;
  /// Answers `w` with `result` once it has the lock back.
  void reacquire(Waiter& w, bool result);

  std::shared_ptr<LockCore> lock_;
  WaitList<Waiter> waiters_;
};

/// threading.Event.
class EventObject {
 public:
  void set();
  void clear() { flag_ = false; }
  bool is_set() const { return flag_; }
  Deferred<bool> wait(Seconds timeout);
  void on_session_end(std::uint64_t session) { waiters_.cancel(session); }

 private:
  bool flag_ = false;
  WaitList<Responder<bool>> waiters_;
};

/// threading.Barrier; the action, if any, is a function registered on the server by name.
class BarrierObject {
 public:
  BarrierObject(Int parties, std::function<void()> action, Seconds timeout);
  Deferred<Int> wait(Seconds timeout);
  void abort();
  void reset();
  Int parties() const { return parties_; }
  Int n_waiting() const { return broken_ ? 0 : static_cast<Int>(waiters_.size()); }
  bool broken() const { return broken_; }
  /// A party that ended while waiting breaks the barrier, as its timeout would have: the others
  /// would otherwise wait for it forever.
  void on_session_end(std::uint64_t session);

 private:
  struct Waiter {
    Int index;
    Responder<Int> reply;
  };
  void break_barrier();

  Int parties_;
  std::function<void()> action_;
  Seconds default_timeout_;
  bool broken_ = false;
  WaitList<Waiter> waiters_;
};

}  // namespace zmanager::sync

ZMANAGER_EXPOSE(zmanager::sync::DictObject, getitem, setitem, delitem, get, contains, len, keys,
                values, items, pop, pop_or, popitem, setdefault, update, clear, copy)
ZMANAGER_EXPOSE(zmanager::sync::ListObject, getitem, setitem, delitem, getslice, len, append,
                extend, insert, pop, remove, index, count, contains, reverse, sort, imul, add, mul,
                to_list)
ZMANAGER_EXPOSE(zmanager::sync::ValueObject, get, set, fetch_add, fetch_sub, exchange,
                compare_exchange, typecode)
ZMANAGER_EXPOSE(zmanager::sync::ArrayObject, getitem, setitem, getslice, len, to_list, typecode)
ZMANAGER_EXPOSE(zmanager::sync::NamespaceObject, get, set, del, contains, items)
ZMANAGER_EXPOSE(zmanager::sync::QueueObject, put, get, put_nowait, get_nowait, qsize, empty, full,
                maxsize, task_done, join, waiting_getters)
ZMANAGER_EXPOSE(zmanager::sync::LockObject, acquire, release, locked, is_owned, waiting,
                acquire_token, token)
ZMANAGER_EXPOSE(zmanager::sync::SemaphoreObject, acquire, release, get_value)
ZMANAGER_EXPOSE(zmanager::sync::ConditionObject, acquire, release, wait, notify, notify_all,
                waiters)
ZMANAGER_EXPOSE(zmanager::sync::EventObject, set, clear, is_set, wait)
ZMANAGER_EXPOSE(zmanager::sync::BarrierObject, wait, abort, reset, parties, n_waiting, broken)
