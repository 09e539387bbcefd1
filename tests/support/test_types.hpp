// Classes the tests serve. Each exists to exercise one part of the object server.
#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <boost/serialization/vector.hpp>
#include <zmanager/zmanager.hpp>

#include "queue_server/job_queue.hpp"  // the example's queue: get() parks until a put()

namespace test {

struct Point {
  double x = 0, y = 0;
  std::string label;
  MSGPACK_DEFINE(x, y, label);
  friend bool operator==(const Point&, const Point&) = default;
};

// An existing C++ type that knows only Boost.Serialization.
struct Matrix {
  int rows = 0, cols = 0;
  std::vector<double> cells;
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    ar& rows& cols& cells;
  }
  friend bool operator==(const Matrix&, const Matrix&) = default;
};

struct CustomFailure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace test

struct Maths {
  int add(int x, int y) { return x + y; }
  int mul(int x, int y) { return x * y; }
  double scale(double v, double by) { return v * by; }
  std::string greet(const std::string& name) { return "hello " + name; }
  std::vector<int> range(int n) {
    std::vector<int> v(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = i;
    return v;
  }
  std::map<std::string, int> histogram(const std::vector<std::string>& words) {
    std::map<std::string, int> h;
    for (const auto& w : words) ++h[w];
    return h;
  }
  test::Point move(test::Point p, double dx) {
    p.x += dx;
    return p;
  }
  test::Matrix transpose(const test::Matrix& m) {
    test::Matrix t{m.cols, m.rows, std::vector<double>(m.cells.size())};
    for (int r = 0; r < m.rows; ++r)
      for (int c = 0; c < m.cols; ++c)
        t.cells[static_cast<std::size_t>(c * m.rows + r)] =
            m.cells[static_cast<std::size_t>(r * m.cols + c)];
    return t;
  }
  zmanager::Bytes reverse(const zmanager::Bytes& b) {
    zmanager::Bytes out(b.size());
    for (std::size_t i = 0; i < b.size(); ++i) out.data()[i] = b.data()[b.size() - 1 - i];
    return out;
  }
  std::size_t length(const zmanager::Bytes& b) { return b.size(); }
  /// Whether the argument is the only holder of its bytes (so that handing it on needs no copy).
  bool held_alone(const zmanager::Bytes& b) { return b.unshared(); }
  std::optional<int> maybe(bool give) { return give ? std::optional<int>(42) : std::nullopt; }
  void fail_custom(const std::string& why) { throw test::CustomFailure(why); }
  int fail_key(const std::string& key) { throw zmanager::KeyError(key); }
  void fail_value() { throw zmanager::ValueError("bad value"); }
  void secret() {}
};
ZMANAGER_EXPOSE(Maths, add, mul, scale, greet, range, histogram, move, transpose, reverse, length,
                held_alone, maybe, fail_custom, fail_key, fail_value, secret)

// Built by a factory with constructor arguments; counts live instances server-side.
struct Counter {
  explicit Counter(int start) : value(start) { ++live(); }
  Counter(const Counter& o) : value(o.value) { ++live(); }
  ~Counter() { --live(); }
  int increment(int by) { return value += by; }
  int get() const { return value; }
  // Not thread-safe on purpose: the server must run calls on one object one at a time.
  int slow_increment() {
    int v = value;
    std::this_thread::yield();
    value = v + 1;
    return value;
  }
  static std::atomic<int>& live() {
    static std::atomic<int> n{0};
    return n;
  }
  int value;
};
ZMANAGER_EXPOSE(Counter, increment, get, slow_increment)

// Holds and hands out proxies: objects passed as arguments and returned.
struct Holder {
  void keep(zmanager::Proxy<Maths> m) { kept = std::move(m); }
  zmanager::Proxy<Maths> give() { return kept; }
  int add_through(zmanager::Proxy<Maths> m, int a, int b) { return m.add(a, b); }
  bool holds() const { return static_cast<bool>(kept); }
  void drop() { kept = {}; }
  // Python's method_to_typeid: a new object comes back as a proxy, not a copy.
  std::shared_ptr<Counter> make_counter(int start) { return std::make_shared<Counter>(start); }
  std::shared_ptr<Counter> same_counter() {
    if (!shared) shared = std::make_shared<Counter>(100);
    return shared;
  }
  zmanager::Proxy<Maths> kept;
  std::shared_ptr<Counter> shared;
};
ZMANAGER_EXPOSE(Holder, keep, give, add_through, holds, drop, make_counter, same_counter)

// A get() that waits on the server for a letter, up to a timeout, with no thread waiting.
struct Mailbox {
  zmanager::Deferred<std::string> get(int timeout_ms) {
    if (!letters.empty()) {
      std::string letter = std::move(letters.front());
      letters.pop_front();
      return letter;
    }
    std::uint64_t id = ++last_id;
    waiters.emplace(id, zmanager::defer<std::string>());
    zmanager::schedule_after(std::chrono::milliseconds(timeout_ms), [this, id] {
      auto it = waiters.find(id);
      if (it == waiters.end()) return;  // answered in time
      it->second.fail(zmanager::TimeoutError("no letter within the timeout"));
      waiters.erase(it);
    });
    return zmanager::Deferred<std::string>::pending();
  }
  void post(std::string letter) {
    if (waiters.empty()) {
      letters.push_back(std::move(letter));
      return;
    }
    auto first = waiters.begin();  // the longest waiting
    first->second.send(letter);
    waiters.erase(first);
  }
  std::size_t waiting() const { return waiters.size(); }
  std::deque<std::string> letters;
  std::map<std::uint64_t, zmanager::Responder<std::string>> waiters;
  std::uint64_t last_id = 0;
};
ZMANAGER_EXPOSE(Mailbox, get, post, waiting)

// Holds one dynamic value, as the server's containers will.
struct Box {
  void set(zmanager::Value v) { value = std::move(v); }
  zmanager::Value get() const { return value; }
  /// The value, moved out: its bytes leave without a copy.
  zmanager::Value take() { return std::exchange(value, zmanager::Value()); }
  std::string kind() const { return std::string(value.kind()); }
  /// Bytes kept as they came (in the segments a same-host client placed them in), and taken
  /// back all in one reply.
  void pile(zmanager::Bytes b) { piled.push_back(std::move(b)); }
  std::vector<zmanager::Bytes> take_pile() { return std::exchange(piled, {}); }
  zmanager::Value value;
  std::vector<zmanager::Bytes> piled;
};
ZMANAGER_EXPOSE(Box, set, get, take, kind, pile, take_pile)

// A method that takes a while, to show other objects are not stalled behind it.
struct Sleeper {
  int nap(int ms) {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return ms;
  }
};
ZMANAGER_EXPOSE(Sleeper, nap)

// A user class that keeps per-client state: the sessions present, each gone when its session
// ends (the on_session_end hook).
struct Roster {
  std::size_t join() {
    present_.insert(zmanager::CallContext::current().caller());
    return present_.size();
  }
  std::size_t present() const { return present_.size(); }
  void on_session_end(std::uint64_t session) { present_.erase(session); }

 private:
  std::set<std::uint64_t> present_;
};
ZMANAGER_EXPOSE(Roster, join, present)

namespace test {

/// The test types, without the shared objects.
inline void register_types(zmanager::BaseManager& m) {
  m.register_type<Maths>("Maths", zmanager::TypeOptions{});
  m.register_type<Maths>("RestrictedMaths", zmanager::TypeOptions{.exposed = {"add", "mul"}});
  m.register_type<Counter>("Counter", [](int start) { return Counter{start}; });
  m.register_type<Holder>("Holder");
  m.register_type<JobQueue>("JobQueue");
  m.register_type<Sleeper>("Sleeper");
  m.register_type<Mailbox>("Mailbox");
  m.register_type<Box>("Box");
}

inline void register_all(zmanager::BaseManager& m) {
  register_types(m);
  m.register_shared("shared_queue", std::make_shared<JobQueue>());
  m.register_shared("shared_counter", std::make_shared<Counter>(0));
  m.register_shared("roster", std::make_shared<Roster>());
  m.register_shared("shared_box", std::make_shared<Box>());
}

}  // namespace test
