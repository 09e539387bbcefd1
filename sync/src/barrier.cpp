// threading.Barrier: waiters park on the server; a timeout, abort() or a failing action breaks it.
#include "objects.hpp"

namespace zmanager::sync {

BarrierObject::BarrierObject(Int parties, std::function<void()> action, Seconds timeout)
    : parties_(parties), action_(std::move(action)), default_timeout_(timeout) {
  if (parties < 1) throw ValueError("parties must be > 0");
}

Deferred<Int> BarrierObject::wait(Seconds timeout) {
  if (broken_) throw BrokenBarrierError();
  auto limit = wait_limit(timeout ? timeout : default_timeout_);
  Int index = static_cast<Int>(waiters_.size());
  if (index + 1 == parties_) {
    // The last to arrive runs the action, as in Python; if it throws, the barrier breaks and
    // this caller gets the action's error, the others BrokenBarrierError.
    if (action_) {
      try {
        action_();
      } catch (...) {
        break_barrier();
        throw;
      }
    }
    waiters_.drain([](Waiter& w) { w.reply.send(w.index); });
    return index;
  }
  if (!waits(limit)) {
    break_barrier();
    throw BrokenBarrierError();
  }
  waiters_.park(Waiter{index, defer<Int>()}, limit, [this](Waiter& w) {
    w.reply.fail(BrokenBarrierError());
    break_barrier();
  });
  return Deferred<Int>::pending();
}

void BarrierObject::break_barrier() {
  broken_ = true;
  waiters_.drain([](Waiter& w) { w.reply.fail(BrokenBarrierError()); });
}

void BarrierObject::on_session_end(std::uint64_t session) {
  if (waiters_.has(session)) break_barrier();
}

void BarrierObject::abort() {
  break_barrier();
}

void BarrierObject::reset() {
  // Waiters of the cycle being reset get BrokenBarrierError; the barrier is then as new.
  waiters_.drain([](Waiter& w) { w.reply.fail(BrokenBarrierError()); });
  broken_ = false;
}

}  // namespace zmanager::sync
