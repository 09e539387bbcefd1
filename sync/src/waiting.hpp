// What every blocking built-in shares: Python's timeout rules, and a list of parked calls that
// the server answers later (pillar 2: a waiter costs memory, never a thread).
#pragma once

#include <algorithm>
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

/// The client session making the running call (an internal owner for calls made inside the
/// server): what a lock, a semaphore or a parked call is recorded against.
inline std::uint64_t calling_session() {
  return CallContext::current().caller();
}

/// Whether a parked call can still be answered: a Responder, or a waiter holding one as `reply`.
template <class W>
bool can_answer(const W& w) {
  if constexpr (requires { w.caller_alive(); })
    return w.caller_alive();
  else if constexpr (requires { w.reply->caller_alive(); })
    return w.reply->caller_alive();
  else
    return w.reply.caller_alive();
}

/// Parked calls of one object, oldest first, each with the session that made it. Used only
/// under the object's monitor (its strand): the timeout task runs there too, and only while the
/// object lives.
template <class Waiter>
class WaitList {
 public:
  using Id = std::uint64_t;

  /// Parks `waiter` for the calling session; if `limit` is finite, `on_timeout(waiter)` runs
  /// once it has passed, with the waiter already removed (unless it was taken first).
  template <class OnTimeout>
  Id park(Waiter waiter, const WaitLimit& limit, OnTimeout on_timeout) {
    Id id = ++last_id_;
    if (waiters_.size() >= prune_at_) {
      // Calls answered while parked (their deadline passed) are skipped when their turn comes;
      // dropped here too, so that a list nobody takes from does not grow with them.
      std::erase_if(waiters_, [](const auto& entry) { return !can_answer(entry.second.waiter); });
      prune_at_ = std::max<std::size_t>(64, 2 * waiters_.size());
    }
    waiters_.emplace(id, Parked{calling_session(), std::move(waiter)});
    if (limit) {
      schedule_after(*limit, [this, id, on_timeout = std::move(on_timeout)]() mutable {
        auto it = waiters_.find(id);
        if (it == waiters_.end()) return;  // answered in time
        Waiter w = std::move(it->second.waiter);
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
  /// The parked calls that can still be answered (what monitoring methods report).
  std::size_t live() const {
    std::size_t n = 0;
    for (const auto& [id, parked] : waiters_) n += can_answer(parked.waiter) ? 1 : 0;
    return n;
  }
  /// The session of the oldest waiter (the one take() returns next).
  std::uint64_t front_session() const { return waiters_.begin()->second.session; }
  /// Removes and returns the oldest waiter.
  Waiter take() {
    auto it = waiters_.begin();
    Waiter w = std::move(it->second.waiter);
    waiters_.erase(it);
    return w;
  }
  /// Calls `f(waiter)` on every waiter, oldest first, and empties the list.
  template <class F>
  void drain(F f) {
    auto all = std::move(waiters_);
    waiters_.clear();
    for (auto& [id, parked] : all) f(parked.waiter);
  }
  /// Whether `session` has a call parked here.
  bool has(std::uint64_t session) const {
    for (const auto& [id, parked] : waiters_)
      if (parked.session == session) return true;
    return false;
  }
  /// Drops the calls `session` parked here (it has ended: nobody would read their replies).
  void cancel(std::uint64_t session) {
    std::erase_if(waiters_, [&](const auto& entry) { return entry.second.session == session; });
  }

 private:
  struct Parked {
    std::uint64_t session;
    Waiter waiter;
  };
  Id last_id_ = 0;
  std::size_t prune_at_ = 64;
  std::map<Id, Parked> waiters_;
};

/// Counts, per session, what it took and has not yet given back: permits of a Semaphore, items
/// of a queue not yet marked done. Python ties neither to who took it (another thread may
/// release or call task_done), so a give-back pays the giver's own count first and then other
/// sessions'; what a session still owes when it ends is what it held.
class SessionDebts {
 public:
  void add(std::uint64_t session, std::int64_t n = 1) { owed_[session] += n; }
  void pay(std::uint64_t session, std::int64_t n);
  /// Forgets `session`; returns what it still owed.
  std::int64_t settle(std::uint64_t session);

 private:
  std::map<std::uint64_t, std::int64_t> owed_;  // only sessions that owe something
};

}  // namespace zmanager::sync
