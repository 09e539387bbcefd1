// Lock, RLock, Semaphore, Condition and Event: acquire and wait park on the server.
#include <algorithm>

#include "objects.hpp"

namespace zmanager::sync {

// ---- LockCore ----

void LockCore::grant_locked(const Holder& who, std::size_t count) {
  owner_ = who;
  count_ = count;
  ++token_;
}

std::optional<std::uint64_t> LockCore::try_acquire(const Holder& who, std::size_t count) {
  std::lock_guard lock(mu_);
  if (!owner_) {
    grant_locked(who, count);
    return token_;
  }
  if (reentrant_ && *owner_ == who) {
    count_ += count;
    return token_;
  }
  return std::nullopt;
}

std::uint64_t LockCore::enqueue(const Holder& who, std::size_t count, Grant grant, Alive alive) {
  std::function<void()> now;
  std::uint64_t id;
  {
    std::lock_guard lock(mu_);
    id = ++last_id_;
    waiters_.emplace(id, Waiter{who, count, std::move(grant), std::move(alive)});
    if (!owner_) now = hand_to_next_locked();  // freed between a failed try and this call
  }
  if (now) now();
  return id;
}

bool LockCore::cancel(std::uint64_t id) {
  std::lock_guard lock(mu_);
  return waiters_.erase(id) != 0;
}

std::function<void()> LockCore::hand_to_next_locked() {
  // A waiter whose client is gone would hold the lock forever: pass it by.
  while (!waiters_.empty() && !waiters_.begin()->second.alive()) waiters_.erase(waiters_.begin());
  if (waiters_.empty()) return {};
  auto first = waiters_.begin();
  grant_locked(first->second.who, first->second.count);
  // Run by the member function that called this one, once mu_ is released: `this` lives. A
  // grant nobody received must not leave the lock with a caller told it did not get it.
  auto answer = [this, who = first->second.who, grant = std::move(first->second.grant),
                 token = token_] {
    if (!grant(token)) drop(who);
  };
  waiters_.erase(first);
  return answer;
}

void LockCore::release(const Holder& who) {
  std::function<void()> next;
  {
    std::lock_guard lock(mu_);
    if (!owner_) {
      throw RuntimeError(reentrant_ ? "cannot release un-acquired lock" : "release unlocked lock");
    }
    if (reentrant_ && !(*owner_ == who)) throw RuntimeError("cannot release un-acquired lock");
    if (--count_ > 0) return;
    next = free_locked();
  }
  if (next) next();
}

std::function<void()> LockCore::free_locked() {
  owner_.reset();
  count_ = 0;
  return hand_to_next_locked();
}

std::size_t LockCore::release_all(const Holder& who) {
  std::function<void()> next;
  std::size_t levels;
  {
    std::lock_guard lock(mu_);
    if (!owner_ || !(*owner_ == who)) throw RuntimeError("cannot release un-acquired lock");
    levels = count_;
    next = free_locked();
  }
  if (next) next();
  return levels;
}

bool LockCore::held_by(const Holder& who) const {
  std::lock_guard lock(mu_);
  return owner_ && *owner_ == who;
}

std::uint64_t LockCore::token(const Holder& who) const {
  std::lock_guard lock(mu_);
  if (!owner_ || !(*owner_ == who))
    throw RuntimeError("cannot get the token of an un-acquired lock");
  return token_;
}

void LockCore::abandon(std::uint64_t session) {
  std::function<void()> next;
  {
    std::lock_guard lock(mu_);
    std::erase_if(waiters_, [&](const auto& entry) { return entry.second.who.session == session; });
    if (!owner_ || owner_->session != session) return;
    next = free_locked();
  }
  if (next) next();
}

void LockCore::drop(const Holder& who) {
  std::function<void()> next;
  {
    std::lock_guard lock(mu_);
    if (!owner_ || !(*owner_ == who)) return;
    next = free_locked();
  }
  if (next) next();
}

bool LockCore::locked() const {
  std::lock_guard lock(mu_);
  return owner_.has_value();
}

std::size_t LockCore::waiting() const {
  std::lock_guard lock(mu_);
  return static_cast<std::size_t>(std::count_if(
      waiters_.begin(), waiters_.end(), [](const auto& entry) { return entry.second.alive(); }));
}

namespace {

Holder calling(std::uint64_t thread) {
  return Holder{calling_session(), thread};
}

/// acquire() of a Lock, an RLock or a Condition's lock: now, or parked with its timeout. The
/// answer is `granted(token)` once acquired, `refused` if not.
template <class R, class Granted>
Deferred<R> acquire_core(const std::shared_ptr<LockCore>& core, const Holder& who, bool blocking,
                         Seconds timeout, Granted granted, R refused) {
  auto limit = lock_wait_limit(blocking, timeout);
  if (auto token = core->try_acquire(who)) return granted(*token);
  if (!waits(limit)) return refused;
  auto reply = std::make_shared<Responder<R>>(defer<R>());
  auto id = core->enqueue(
      who, 1, [reply, granted](std::uint64_t token) { return reply->send(granted(token)); },
      [reply] { return reply->caller_alive(); });
  if (limit) {
    // The core outlives this object if a Condition shares it: hold it, not `this`.
    schedule_after(*limit, [core, id, reply, refused] {
      if (core->cancel(id)) reply->send(refused);
    });
  }
  return Deferred<R>::pending();
}

Deferred<bool> acquire_core(const std::shared_ptr<LockCore>& core, const Holder& who, bool blocking,
                            Seconds timeout) {
  return acquire_core(
      core, who, blocking, timeout, [](std::uint64_t) { return true; }, false);
}

}  // namespace

// ---- Lock / RLock ----

Deferred<bool> LockObject::acquire(std::uint64_t thread, bool blocking, Seconds timeout) {
  return acquire_core(core_, calling(thread), blocking, timeout);
}

Deferred<Int> LockObject::acquire_token(std::uint64_t thread, bool blocking, Seconds timeout) {
  return acquire_core(
      core_, calling(thread), blocking, timeout,
      [](std::uint64_t token) { return static_cast<Int>(token); }, Int{0});
}

Int LockObject::token(std::uint64_t thread) const {
  return static_cast<Int>(core_->token(calling(thread)));
}

void LockObject::release(std::uint64_t thread) {
  core_->release(calling(thread));
}

bool LockObject::is_owned(std::uint64_t thread) const {
  return core_->held_by(calling(thread));
}

// ---- Semaphore ----

SemaphoreObject::SemaphoreObject(Int value, bool bounded)
    : value_(value), initial_(value), bounded_(bounded) {
  if (value < 0) throw ValueError("semaphore initial value must be >= 0");
}

Deferred<bool> SemaphoreObject::acquire(bool blocking, Seconds timeout) {
  auto limit = semaphore_wait_limit(blocking, timeout);
  if (value_ > 0) {
    --value_;
    held_.add(calling_session());
    return true;
  }
  if (!waits(limit)) return false;
  waiters_.park(defer<bool>(), limit, [](Responder<bool>& r) { r.send(false); });
  return Deferred<bool>::pending();
}

void SemaphoreObject::release(Int n) {
  if (n < 1) throw ValueError("n must be one or more");
  if (bounded_ && value_ + n > initial_) throw ValueError("Semaphore released too many times");
  held_.pay(calling_session(), n);
  give(n);
}

void SemaphoreObject::give(Int n) {
  value_ += n;
  while (value_ > 0 && !waiters_.empty()) {
    std::uint64_t session = waiters_.front_session();
    auto waiter = waiters_.take();
    if (!waiter.caller_alive()) continue;  // its client is gone: the count stays free
    --value_;
    held_.add(session);
    waiter.send(true);
  }
}

void SemaphoreObject::on_session_end(std::uint64_t session) {
  waiters_.cancel(session);
  Int held = held_.settle(session);
  // A BoundedSemaphore never goes above its initial value, even if others released on the
  // dead session's behalf meanwhile.
  if (bounded_) held = std::min(held, initial_ - value_);
  if (held > 0) give(held);
}

// ---- Condition ----

Holder ConditionObject::holder(std::uint64_t thread) const {
  return calling(thread);
}

Deferred<bool> ConditionObject::acquire(std::uint64_t thread, bool blocking, Seconds timeout) {
  return acquire_core(lock_, holder(thread), blocking, timeout);
}

void ConditionObject::release(std::uint64_t thread) {
  lock_->release(holder(thread));
}

void ConditionObject::reacquire(Waiter& w, bool result) {
  auto reply = w.reply;
  if (lock_->try_acquire(w.who, w.levels)) {
    reply->send(result);
    return;
  }
  lock_->enqueue(
      w.who, w.levels, [reply, result](std::uint64_t) { return reply->send(result); },
      [reply] { return reply->caller_alive(); });
}

Deferred<bool> ConditionObject::wait(std::uint64_t thread, Seconds timeout) {
  Holder who = holder(thread);
  if (!lock_->held_by(who)) throw RuntimeError("cannot wait on un-acquired lock");
  auto limit = wait_limit(timeout);
  std::size_t levels = lock_->release_all(who);
  auto reply = std::make_shared<Responder<bool>>(defer<bool>());
  Waiter w{who, levels, reply};
  if (!waits(limit)) {
    reacquire(w, false);  // Python still gives the lock up and takes it back
  } else {
    waiters_.park(std::move(w), limit, [this](Waiter& timed_out) { reacquire(timed_out, false); });
  }
  return Deferred<bool>::pending();
}

void ConditionObject::on_session_end(std::uint64_t session) {
  waiters_.cancel(session);
  lock_->abandon(session);
}

void ConditionObject::notify(std::uint64_t thread, Int n) {
  if (!lock_->held_by(holder(thread))) throw RuntimeError("cannot notify on un-acquired lock");
  if (n < 0) throw ValueError("notify(n): n must be >= 0");
  for (Int woken = 0; woken < n && !waiters_.empty();) {
    auto w = waiters_.take();
    if (!w.reply->caller_alive()) continue;  // exactly n waiters that can still wake
    reacquire(w, true);
    ++woken;
  }
}

void ConditionObject::notify_all(std::uint64_t thread) {
  if (!lock_->held_by(holder(thread))) throw RuntimeError("cannot notify on un-acquired lock");
  waiters_.drain([this](Waiter& w) { reacquire(w, true); });
}

// ---- Event ----

void EventObject::set() {
  flag_ = true;
  waiters_.drain([](Responder<bool>& r) { r.send(true); });
}

Deferred<bool> EventObject::wait(Seconds timeout) {
  if (flag_) return true;
  auto limit = wait_limit(timeout);
  if (!waits(limit)) return false;
  // Python's wait() returns the flag as it is when the wait ends: false on a timeout.
  waiters_.park(defer<bool>(), limit, [this](Responder<bool>& r) { r.send(flag_); });
  return Deferred<bool>::pending();
}

}  // namespace zmanager::sync
