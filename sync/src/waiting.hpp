// What every blocking built-in shares: Python's timeout rules, and a list of parked calls that
// the server answers later (pillar 2: a waiter costs memory, never a thread).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <utility>

#include "zmanager/call.hpp"

namespace zmanager::sync {

using Clock = std::chrono::steady_clock;

/// How long a blocking call may wait: nullopt is forever, zero is "do not wait".
using WaitLimit = std::optional<Clock::duration>;

/// Python's `timeout` argument (seconds; None is forever) as a WaitLimit. Negative values mean
/// "do not wait" (threading.Event.wait, Condition.wait, Barrier.wait); NaN is a ValueError.
WaitLimit wait_limit(std::optional<double> seconds);
/// queue.Queue's stricter rule: a negative timeout is a ValueError.
WaitLimit queue_wait_limit(bool block, std::optional<double> seconds);
/// threading.Lock.acquire's rules: -1 (or None) is forever, other negatives and a timeout on a
/// non-blocking call are ValueErrors.
WaitLimit lock_wait_limit(bool blocking, std::optional<double> seconds);
/// threading.Semaphore.acquire's rules: a timeout on a non-blocking call is a ValueError.
WaitLimit semaphore_wait_limit(bool blocking, std::optional<double> seconds);

inline bool waits(const WaitLimit& limit) {
  return !limit || *limit > Clock::duration::zero();
}

/// Parked calls of one object, oldest first. Used only under the object's monitor (its strand):
/// the timeout task runs there too, and only while the object lives.
template <class Waiter>
class WaitList {
 public:
  using Id = std::uint64_t;

  /// Parks `waiter`; if `limit` is finite, `on_timeout(waiter)` runs once it has passed, with
  /// the waiter already removed (unless it was taken first).
  template <class OnTimeout>
  Id park(Waiter waiter, const WaitLimit& limit, OnTimeout on_timeout) {
    Id id = ++last_id_;
    waiters_.emplace(id, std::move(waiter));
    if (limit) {
      schedule_after(*limit, [this, id, on_timeout = std::move(on_timeout)]() mutable {
        auto it = waiters_.find(id);
        if (it == waiters_.end()) return;  // answered in time
        Waiter w = std::move(it->second);
        waiters_.erase(it);
        on_timeout(w);
      });
    }
    return id;
  }
  Id park(Waiter waiter) {
    return park(std::move(waiter), std::nullopt, [](Waiter&) {});
  }

  bool empty() const { return waiters_.empty(); }
  std::size_t size() const { return waiters_.size(); }
  Waiter& front() { return waiters_.begin()->second; }
  /// Removes and returns the oldest waiter.
  Waiter take() {
    auto it = waiters_.begin();
    Waiter w = std::move(it->second);
    waiters_.erase(it);
    return w;
  }
  /// Calls `f(waiter)` on every waiter, oldest first, and empties the list.
  template <class F>
  void drain(F f) {
    auto all = std::move(waiters_);
    waiters_.clear();
    for (auto& [id, w] : all) f(w);
  }

 private:
  Id last_id_ = 0;
  std::map<Id, Waiter> waiters_;
};

}  // namespace zmanager::sync
