// SyncManager and the typed proxies of its built-in types: Python's SyncManager in C++.
//
//   zmanager::SyncManager m;  m.start();
//   auto d = m.dict<std::string, int>();  d["a"] = 1;
//   auto q = m.Queue<std::string>(5);     q.put("x");  q.get(true, 100ms);
//   auto lock = m.Lock();                 std::lock_guard g(lock);
//
// Every object lives in the server; values are stored there as zmanager::Value and converted to
// the proxy's C++ types here, so a typed read of a value of another type is a TypeError naming
// both. Blocking calls (get, put, acquire, wait, join) wait in the server without a thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "zmanager/manager.hpp"
#include "zmanager/value.hpp"

namespace zmanager {

/// How long a blocking call may wait; empty means forever (Python's `timeout=None`).
using Timeout = std::optional<std::chrono::duration<double>>;

namespace detail {

/// This thread's token: lock ownership is per client thread, as in Python (where each thread
/// has its own connection to the manager).
std::uint64_t thread_token();

inline std::optional<double> seconds(const Timeout& t) {
  if (!t) return std::nullopt;
  return t->count();
}

/// What every typed proxy of a built-in holds: a dynamic proxy and the type ids it accepts.
class BuiltinProxy {
 public:
  BuiltinProxy() = default;
  /// TypeError if `proxy` refers to an object of another type (a Queue read as a dict).
  BuiltinProxy(DynamicProxy proxy, std::initializer_list<std::string_view> type_ids);

  explicit operator bool() const noexcept { return static_cast<bool>(proxy_); }
  std::uint64_t id() const { return proxy_.id(); }
  std::string_view type_id() const { return proxy_.type_id(); }
  const std::shared_ptr<ObjectRef>& ref() const noexcept { return proxy_.ref(); }
  /// The same object through dynamic calls (its wire methods: docs/protocol.md).
  const DynamicProxy& dynamic() const noexcept { return proxy_; }
  /// How long each call through this proxy may take (see zmanager::with_timeout).
  void set_call_timeout(CallTimeout timeout) { proxy_.set_call_timeout(timeout); }
  CallTimeout call_timeout() const { return proxy_.call_timeout(); }

  friend bool operator==(const BuiltinProxy& a, const BuiltinProxy& b) noexcept {
    return a.proxy_ == b.proxy_;
  }

 protected:
  template <class R = void, class... A>
  R call(std::string_view method, A&&... args) const {
    return proxy_.call<R>(method, std::forward<A>(args)...);
  }
  template <class R = void, class... A>
  Future<R> call_async(std::string_view method, A&&... args) const {
    return proxy_.call_async<R>(method, std::forward<A>(args)...);
  }

  DynamicProxy proxy_;
};

template <class T>
concept BuiltinProxyType = std::is_base_of_v<BuiltinProxy, T>;

/// The Python typecode a Value<T> or Array<T> is created with.
template <class T>
constexpr const char* typecode() {
  if constexpr (std::is_same_v<T, bool>)
    return "?";
  else if constexpr (std::is_integral_v<T> && std::is_signed_v<T>)
    return "q";
  else if constexpr (std::is_integral_v<T>)
    return "Q";
  else if constexpr (std::is_floating_point_v<T>)
    return "d";
  else
    static_assert(sizeof(T) == 0, "Value<T> and Array<T> hold bool, integers or floating point");
}

/// Functions a Barrier may run when it trips, by name (kept by the server's SyncManager).
struct BarrierActions {
  mutable std::mutex mu;
  std::map<std::string, std::function<void()>> by_name;
};

}  // namespace detail

/// `container[key]`: reads with a conversion to V (or `as<T>()`), assigns remotely with `=`.
/// `d["inner"]["k"] = v` reaches through a proxy stored in the container.
template <class K, class V>
class ItemRef {
 public:
  ItemRef(DynamicProxy container, K key) : container_(std::move(container)), key_(std::move(key)) {}

  ItemRef& operator=(const V& value) {
    container_.call<void>("setitem", key_, value);
    return *this;
  }
  // `d["a"] = d["b"]` copies the value, not the reference.
  ItemRef& operator=(const ItemRef& other) { return *this = other.get(); }

  V get() const { return container_.call<V>("getitem", key_); }
  operator V() const { return get(); }  // NOLINT: reads like the element
  /// The item as another type: a nested proxy (`as<DictProxy<std::string, int>>()`) or a value.
  template <class T>
  T as() const {
    return container_.call<T>("getitem", key_);
  }
  /// The item of the container (dict or list) stored at this item.
  ItemRef<zmanager::Value, zmanager::Value> operator[](zmanager::Value key) const {
    return {as<DynamicProxy>(), std::move(key)};
  }

 private:
  DynamicProxy container_;
  K key_;
};

/// A shared dict (Python's DictProxy). K and V default to zmanager::Value: any key and value.
template <class K = zmanager::Value, class V = zmanager::Value>
class DictProxy : public detail::BuiltinProxy {
 public:
  using key_type = K;
  using mapped_type = V;
  DictProxy() = default;
  explicit DictProxy(DynamicProxy p) : BuiltinProxy(std::move(p), {"dict"}) {}

  void set(const K& key, const V& value) const { call("setitem", key, value); }
  /// KeyError if absent.
  V get(const K& key) const { return call<V>("getitem", key); }
  V get(const K& key, const V& fallback) const { return call<V>("get", key, fallback); }
  ItemRef<K, V> operator[](const K& key) const { return {proxy_, key}; }
  /// Python's `del d[key]`: KeyError if absent.
  void del(const K& key) const { call("delitem", key); }
  bool contains(const K& key) const { return call<bool>("contains", key); }
  std::size_t size() const { return call<std::size_t>("len"); }
  bool empty() const { return size() == 0; }
  std::vector<K> keys() const { return call<std::vector<K>>("keys"); }
  std::vector<V> values() const { return call<std::vector<V>>("values"); }
  /// In insertion order.
  std::vector<std::pair<K, V>> items() const { return call<std::vector<std::pair<K, V>>>("items"); }
  V pop(const K& key) const { return call<V>("pop", key); }
  V pop(const K& key, const V& fallback) const { return call<V>("pop_or", key, fallback); }
  /// The last inserted pair; KeyError when empty.
  std::pair<K, V> popitem() const { return call<std::pair<K, V>>("popitem"); }
  V setdefault(const K& key, const V& fallback) const {
    return call<V>("setdefault", key, fallback);
  }
  /// In the order given, as Python's update with a list of pairs: `d.update({{"x", 1}})`.
  void update(const std::vector<std::pair<K, V>>& items) const { call("update", items); }
  /// From a std::map, std::unordered_map or any msgpack map.
  template <class Map>
  requires requires { typename Map::mapped_type; }
  void update(const Map& items) const { call("update", items); }
  void clear() const { call("clear"); }
  std::map<K, V> copy() const { return call<std::map<K, V>>("copy"); }
};

/// A shared list (Python's ListProxy). Negative indices count from the end.
template <class T = zmanager::Value>
class ListProxy : public detail::BuiltinProxy {
 public:
  using value_type = T;
  ListProxy() = default;
  explicit ListProxy(DynamicProxy p) : BuiltinProxy(std::move(p), {"list"}) {}

  T get(std::int64_t index) const { return call<T>("getitem", index); }
  void set(std::int64_t index, const T& value) const { call("setitem", index, value); }
  ItemRef<std::int64_t, T> operator[](std::int64_t index) const { return {proxy_, index}; }
  void del(std::int64_t index) const { call("delitem", index); }
  /// Python's `l[start:stop]`.
  std::vector<T> slice(std::optional<std::int64_t> start, std::optional<std::int64_t> stop) const {
    return call<std::vector<T>>("getslice", start, stop);
  }
  std::size_t size() const { return call<std::size_t>("len"); }
  bool empty() const { return size() == 0; }
  void append(const T& value) const { call("append", value); }
  void extend(const std::vector<T>& values) const { call("extend", values); }
  void insert(std::int64_t index, const T& value) const { call("insert", index, value); }
  /// IndexError when empty or out of range.
  T pop(std::int64_t index = -1) const { return call<T>("pop", index); }
  /// ValueError if absent.
  void remove(const T& value) const { call("remove", value); }
  /// ValueError if absent.
  std::size_t index(const T& value, std::int64_t start = 0, std::int64_t stop = INT64_MAX) const {
    return call<std::size_t>("index", value, start, stop);
  }
  std::size_t count(const T& value) const { return call<std::size_t>("count", value); }
  bool contains(const T& value) const { return call<bool>("contains", value); }
  void reverse() const { call("reverse"); }
  void sort(bool descending = false) const { call("sort", descending); }
  std::vector<T> to_vector() const { return call<std::vector<T>>("to_list"); }
  /// Python's `l + other`: a new local vector; the shared list is unchanged.
  std::vector<T> operator+(const std::vector<T>& other) const {
    return call<std::vector<T>>("add", other);
  }
  const ListProxy& operator+=(const std::vector<T>& other) const {
    extend(other);
    return *this;
  }
  /// Python's `l *= n`, in place on the server.
  const ListProxy& operator*=(std::int64_t times) const {
    call("imul", times);
    return *this;
  }
};

/// A shared queue: Queue, LifoQueue, PriorityQueue or JoinableQueue (Python's queue.Queue
/// methods; every one has task_done and join, as Python's do).
template <class T = zmanager::Value>
class QueueProxy : public detail::BuiltinProxy {
 public:
  using value_type = T;
  QueueProxy() = default;
  explicit QueueProxy(DynamicProxy p)
      : BuiltinProxy(std::move(p), {"Queue", "LifoQueue", "PriorityQueue", "JoinableQueue"}) {}

  /// Full if it could not be put: at once with `block=false`, after `timeout` otherwise.
  void put(const T& item, bool block = true, Timeout timeout = {}) const {
    call("put", item, block, detail::seconds(timeout));
  }
  void put_nowait(const T& item) const { put(item, false); }
  /// Empty if nothing came: at once with `block=false`, after `timeout` otherwise.
  T get(bool block = true, Timeout timeout = {}) const {
    return call<T>("get", block, detail::seconds(timeout));
  }
  T get_nowait() const { return get(false); }
  /// Pipelined: many gets may wait in the server on one connection.
  Future<T> get_async(bool block = true, Timeout timeout = {}) const {
    return call_async<T>("get", block, detail::seconds(timeout));
  }
  Future<void> put_async(const T& item, bool block = true, Timeout timeout = {}) const {
    return call_async<void>("put", item, block, detail::seconds(timeout));
  }
  std::size_t qsize() const { return call<std::size_t>("qsize"); }
  bool empty() const { return call<bool>("empty"); }
  bool full() const { return call<bool>("full"); }
  std::size_t maxsize() const { return call<std::size_t>("maxsize"); }
  /// ValueError if called more times than items were put.
  void task_done() const { call("task_done"); }
  /// Waits until every item put has been marked done.
  void join() const { call("join"); }
  Future<void> join_async() const { return call_async<void>("join"); }
  /// How many get() calls wait in the server.
  std::size_t waiting_getters() const { return call<std::size_t>("waiting_getters"); }
};

/// The C++ names of Python's acquire/release: Lockable (std::lock_guard, std::unique_lock,
/// std::scoped_lock) and TimedLockable (try_lock_for) for any proxy that has both.
template <class Derived>
class LockableMixin {
 public:
  void lock() const { self().acquire(); }
  void unlock() const { self().release(); }
  bool try_lock() const { return self().acquire(false); }
  template <class Rep, class Period>
  bool try_lock_for(std::chrono::duration<Rep, Period> d) const {
    return self().acquire(true, d);
  }

 private:
  const Derived& self() const { return static_cast<const Derived&>(*this); }
};

/// acquire/release of locks and conditions, which name the calling thread (the holder).
template <class Derived>
class AcquirerMixin : public LockableMixin<Derived> {
 public:
  /// Python's acquire(blocking=True, timeout=None): true once acquired, false on a timeout or
  /// when `blocking` is false and it is taken.
  bool acquire(bool blocking = true, Timeout timeout = {}) const {
    return self().template call<bool>("acquire", detail::thread_token(), blocking,
                                      detail::seconds(timeout));
  }
  Future<bool> acquire_async(bool blocking = true, Timeout timeout = {}) const {
    return self().template call_async<bool>("acquire", detail::thread_token(), blocking,
                                            detail::seconds(timeout));
  }
  /// RuntimeError if not held (for an RLock or a Condition: not held by this thread).
  void release() const { self().template call<void>("release", detail::thread_token()); }

 private:
  const Derived& self() const { return static_cast<const Derived&>(*this); }
};

/// Fencing tokens of a Lock or RLock (docs/reliability.md): every grant of the lock gets a
/// number greater than the last one's. A holder passes its token to the resource the lock
/// guards, which refuses a token lower than the highest it has seen: a holder whose session
/// expired (paused, cut off) and whose lock went to another cannot overwrite the newer work.
template <class Derived>
class FencedMixin {
 public:
  /// acquire() answering the hold's fencing token; nullopt where acquire() would be false.
  std::optional<std::uint64_t> acquire_token(bool blocking = true, Timeout timeout = {}) const {
    auto token = self().template call<std::uint64_t>("acquire_token", detail::thread_token(),
                                                     blocking, detail::seconds(timeout));
    return token ? std::optional<std::uint64_t>(token) : std::nullopt;
  }
  /// The fencing token of this thread's hold; RuntimeError if it holds none.
  std::uint64_t token() const {
    return self().template call<std::uint64_t>("token", detail::thread_token());
  }

 private:
  const Derived& self() const { return static_cast<const Derived&>(*this); }
};

/// A shared threading.Lock. Any client may release it (as in Python).
class LockProxy : public detail::BuiltinProxy,
                  public AcquirerMixin<LockProxy>,
                  public FencedMixin<LockProxy> {
  friend class AcquirerMixin<LockProxy>;
  friend class FencedMixin<LockProxy>;

 public:
  LockProxy() = default;
  explicit LockProxy(DynamicProxy p) : BuiltinProxy(std::move(p), {"Lock"}) {}
  bool locked() const { return call<bool>("locked"); }
  /// How many acquire() calls wait for it.
  std::size_t waiting() const { return call<std::size_t>("waiting"); }
};

/// A shared threading.RLock: re-entrant for the thread that holds it, and only that thread
/// (of that client) may release it.
class RLockProxy : public detail::BuiltinProxy,
                   public AcquirerMixin<RLockProxy>,
                   public FencedMixin<RLockProxy> {
  friend class AcquirerMixin<RLockProxy>;
  friend class FencedMixin<RLockProxy>;

 public:
  RLockProxy() = default;
  explicit RLockProxy(DynamicProxy p) : BuiltinProxy(std::move(p), {"RLock"}) {}
  bool locked() const { return call<bool>("locked"); }
  /// Whether this thread holds it.
  bool is_owned() const { return call<bool>("is_owned", detail::thread_token()); }
};

/// A shared threading.Semaphore or BoundedSemaphore. Lockable too.
class SemaphoreProxy : public detail::BuiltinProxy, public LockableMixin<SemaphoreProxy> {
 public:
  SemaphoreProxy() = default;
  explicit SemaphoreProxy(DynamicProxy p)
      : BuiltinProxy(std::move(p), {"Semaphore", "BoundedSemaphore"}) {}
  bool acquire(bool blocking = true, Timeout timeout = {}) const {
    return call<bool>("acquire", blocking, detail::seconds(timeout));
  }
  Future<bool> acquire_async(bool blocking = true, Timeout timeout = {}) const {
    return call_async<bool>("acquire", blocking, detail::seconds(timeout));
  }
  /// ValueError when a BoundedSemaphore would go above its initial value.
  void release(std::int64_t n = 1) const { call("release", n); }
  std::int64_t get_value() const { return call<std::int64_t>("get_value"); }
};

/// A shared threading.Condition. Lockable: `std::unique_lock lk(cond); cond.wait(1s);`.
class ConditionProxy : public detail::BuiltinProxy, public AcquirerMixin<ConditionProxy> {
  friend class AcquirerMixin<ConditionProxy>;

 public:
  ConditionProxy() = default;
  explicit ConditionProxy(DynamicProxy p) : BuiltinProxy(std::move(p), {"Condition"}) {}

  /// Releases the lock, waits for a notify or the timeout, takes the lock back; false on a
  /// timeout. RuntimeError if this thread does not hold the lock.
  bool wait(Timeout timeout = {}) const {
    return call<bool>("wait", detail::thread_token(), detail::seconds(timeout));
  }
  /// Waits until `predicate()` is true or the timeout passes; returns the last result.
  template <class Predicate>
  bool wait_for(Predicate predicate, Timeout timeout = {}) const {
    bool result = predicate();
    using Clock = std::chrono::steady_clock;
    std::optional<Clock::time_point> end;
    if (timeout) end = Clock::now() + std::chrono::duration_cast<Clock::duration>(*timeout);
    while (!result) {
      Timeout left;
      if (end) {
        left = *end - Clock::now();
        if (left->count() <= 0) break;
      }
      wait(left);
      result = predicate();
    }
    return result;
  }
  /// Wakes exactly `n` waiters (all of them, if fewer wait).
  void notify(std::int64_t n = 1) const { call("notify", detail::thread_token(), n); }
  void notify_all() const { call("notify_all", detail::thread_token()); }
  /// How many wait() calls are parked (for tests and monitoring).
  std::size_t waiting() const { return call<std::size_t>("waiters"); }
};

/// A shared threading.Event.
class EventProxy : public detail::BuiltinProxy {
 public:
  EventProxy() = default;
  explicit EventProxy(DynamicProxy p) : BuiltinProxy(std::move(p), {"Event"}) {}
  void set() const { call("set"); }
  void clear() const { call("clear"); }
  bool is_set() const { return call<bool>("is_set"); }
  /// The flag when the wait ends: false after a timeout.
  bool wait(Timeout timeout = {}) const { return call<bool>("wait", detail::seconds(timeout)); }
  Future<bool> wait_async(Timeout timeout = {}) const {
    return call_async<bool>("wait", detail::seconds(timeout));
  }
};

/// A shared threading.Barrier.
class BarrierProxy : public detail::BuiltinProxy {
 public:
  BarrierProxy() = default;
  explicit BarrierProxy(DynamicProxy p) : BuiltinProxy(std::move(p), {"Barrier"}) {}
  /// This caller's arrival index in [0, parties); BrokenBarrierError if the barrier is or gets
  /// broken (abort, reset, a timeout).
  std::size_t wait(Timeout timeout = {}) const {
    return call<std::size_t>("wait", detail::seconds(timeout));
  }
  Future<std::size_t> wait_async(Timeout timeout = {}) const {
    return call_async<std::size_t>("wait", detail::seconds(timeout));
  }
  void abort() const { call("abort"); }
  void reset() const { call("reset"); }
  std::size_t parties() const { return call<std::size_t>("parties"); }
  std::size_t n_waiting() const { return call<std::size_t>("n_waiting"); }
  bool broken() const { return call<bool>("broken"); }
};

/// A shared multiprocessing.Value, with atomic read-modify-write on the server (Python's
/// `v.value += 1` through a proxy loses updates; `fetch_add` does not).
template <class T>
class ValueProxy : public detail::BuiltinProxy {
 public:
  using value_type = T;
  ValueProxy() = default;
  explicit ValueProxy(DynamicProxy p) : BuiltinProxy(std::move(p), {"Value"}) {}
  T get() const { return call<T>("get"); }
  void set(const T& value) const { call("set", value); }
  /// Adds `delta` and returns the value before.
  T fetch_add(const T& delta) const { return call<T>("fetch_add", delta); }
  T fetch_sub(const T& delta) const { return call<T>("fetch_sub", delta); }
  /// Stores `value` and returns the value before.
  T exchange(const T& value) const { return call<T>("exchange", value); }
  /// std::atomic's: stores `desired` if the value equals `expected`; otherwise loads the value
  /// into `expected`. True if it stored.
  bool compare_exchange(T& expected, const T& desired) const {
    auto [stored, current] = call<std::pair<bool, T>>("compare_exchange", expected, desired);
    if (!stored) expected = current;
    return stored;
  }
};

/// A shared multiprocessing.Array: fixed length, one element type.
template <class T>
class ArrayProxy : public detail::BuiltinProxy {
 public:
  using value_type = T;
  ArrayProxy() = default;
  explicit ArrayProxy(DynamicProxy p) : BuiltinProxy(std::move(p), {"Array"}) {}
  T get(std::int64_t index) const { return call<T>("getitem", index); }
  void set(std::int64_t index, const T& value) const { call("setitem", index, value); }
  ItemRef<std::int64_t, T> operator[](std::int64_t index) const { return {proxy_, index}; }
  std::vector<T> slice(std::optional<std::int64_t> start, std::optional<std::int64_t> stop) const {
    return call<std::vector<T>>("getslice", start, stop);
  }
  std::size_t size() const { return call<std::size_t>("len"); }
  std::vector<T> to_vector() const { return call<std::vector<T>>("to_list"); }
};

/// A shared Namespace: named attributes of any type.
class NamespaceProxy : public detail::BuiltinProxy {
 public:
  NamespaceProxy() = default;
  explicit NamespaceProxy(DynamicProxy p) : BuiltinProxy(std::move(p), {"Namespace"}) {}
  template <class T>
  void set(const std::string& name, const T& value) const {
    call("set", name, value);
  }
  /// AttributeError if it has no such attribute.
  template <class T = zmanager::Value>
  T get(const std::string& name) const {
    return call<T>("get", name);
  }
  /// AttributeError if it has no such attribute.
  void del(const std::string& name) const { call("del", name); }
  bool contains(const std::string& name) const { return call<bool>("contains", name); }
  std::map<std::string, zmanager::Value> items() const {
    return call<std::map<std::string, zmanager::Value>>("items");
  }
};

/// Makes a manager serve the built-in types (SyncManager does it for itself). Barrier actions
/// are looked up in `actions`.
void register_builtins(BaseManager& manager,
                       std::shared_ptr<detail::BarrierActions> actions = nullptr);

/// Python's SyncManager: a BaseManager that serves the built-in types and creates them.
class SyncManager : public BaseManager {
 public:
  explicit SyncManager(ManagerOptions options = {});

  /// A function a Barrier can run on the server when it trips: `m.Barrier(3, "next_phase")`.
  /// Register it before start() or serve_forever(); it runs under the barrier's monitor.
  void register_action(std::string name, std::function<void()> action);

  /// Keys keep the order given, as in Python.
  template <class K = zmanager::Value, class V = zmanager::Value>
  DictProxy<K, V> dict(const std::vector<std::pair<K, V>>& initial = {}) {
    return DictProxy<K, V>(create_dynamic("dict", initial));
  }
  /// From a std::map, std::unordered_map or any msgpack map.
  template <class K = zmanager::Value, class V = zmanager::Value, class Map>
  requires requires { typename Map::mapped_type; }
  DictProxy<K, V> dict(const Map& initial) {
    return DictProxy<K, V>(create_dynamic("dict", initial));
  }
  template <class T = zmanager::Value>
  ListProxy<T> list(const std::vector<T>& initial = {}) {
    return ListProxy<T>(create_dynamic("list", initial));
  }
  /// maxsize 0: unbounded.
  template <class T = zmanager::Value>
  QueueProxy<T> Queue(std::int64_t maxsize = 0) {
    return QueueProxy<T>(create_dynamic("Queue", maxsize));
  }
  template <class T = zmanager::Value>
  QueueProxy<T> LifoQueue(std::int64_t maxsize = 0) {
    return QueueProxy<T>(create_dynamic("LifoQueue", maxsize));
  }
  /// Lowest first (Python's `<`); put (priority, item) tuples as std::pair or std::tuple.
  template <class T = zmanager::Value>
  QueueProxy<T> PriorityQueue(std::int64_t maxsize = 0) {
    return QueueProxy<T>(create_dynamic("PriorityQueue", maxsize));
  }
  template <class T = zmanager::Value>
  QueueProxy<T> JoinableQueue(std::int64_t maxsize = 0) {
    return QueueProxy<T>(create_dynamic("JoinableQueue", maxsize));
  }
  LockProxy Lock() { return LockProxy(create_dynamic("Lock")); }
  RLockProxy RLock() { return RLockProxy(create_dynamic("RLock")); }
  SemaphoreProxy Semaphore(std::int64_t value = 1) {
    return SemaphoreProxy(create_dynamic("Semaphore", value));
  }
  SemaphoreProxy BoundedSemaphore(std::int64_t value = 1) {
    return SemaphoreProxy(create_dynamic("BoundedSemaphore", value));
  }
  /// Over a new RLock, as Python's default.
  ConditionProxy Condition() {
    return ConditionProxy(create_dynamic("Condition", zmanager::Value()));
  }
  ConditionProxy Condition(const LockProxy& lock) {
    return ConditionProxy(create_dynamic("Condition", lock.dynamic()));
  }
  ConditionProxy Condition(const RLockProxy& lock) {
    return ConditionProxy(create_dynamic("Condition", lock.dynamic()));
  }
  EventProxy Event() { return EventProxy(create_dynamic("Event")); }
  /// `action`: a name given to register_action() on the server; `timeout`: the default for
  /// wait().
  BarrierProxy Barrier(std::int64_t parties, std::optional<std::string> action = {},
                       Timeout timeout = {}) {
    return BarrierProxy(create_dynamic("Barrier", parties, action, detail::seconds(timeout)));
  }
  template <class T>
  ValueProxy<T> Value(const T& initial = T{}) {
    return ValueProxy<T>(create_dynamic("Value", detail::typecode<T>(), initial));
  }
  template <class T>
  ArrayProxy<T> Array(const std::vector<T>& items) {
    return ArrayProxy<T>(create_dynamic("Array", detail::typecode<T>(), items));
  }
  NamespaceProxy Namespace() { return NamespaceProxy(create_dynamic("Namespace")); }

  /// Server side: one dict every client reaches by `name` (Python's
  /// `register(name, callable=lambda: d, proxytype=DictProxy)`). Holding proxies in it is how
  /// separate programs hand each other queues, locks and other objects.
  void register_shared_dict(std::string name);
  /// Client side: the dict shared under `name`.
  template <class K = zmanager::Value, class V = zmanager::Value>
  DictProxy<K, V> shared_dict(std::string_view name) {
    return DictProxy<K, V>(get_shared<Dynamic>(name));
  }

 private:
  std::shared_ptr<detail::BarrierActions> actions_;
};

}  // namespace zmanager

namespace msgpack {
MSGPACK_API_VERSION_NAMESPACE(MSGPACK_DEFAULT_API_NS) {
  namespace adaptor {

  // A built-in's typed proxy travels as its object reference, like any proxy.
  template <zmanager::detail::BuiltinProxyType T>
  struct pack<T> {
    template <class Stream>
    packer<Stream>& operator()(packer<Stream>& o, const T& v) const {
      return o.pack(v.dynamic());
    }
  };
  template <zmanager::detail::BuiltinProxyType T>
  struct convert<T> {
    const msgpack::object& operator()(const msgpack::object& o, T& v) const {
      zmanager::DynamicProxy p;
      msgpack::adaptor::convert<zmanager::DynamicProxy>()(o, p);
      v = p ? T(std::move(p)) : T();
      return o;
    }
  };

  }  // namespace adaptor
}
}  // namespace msgpack
