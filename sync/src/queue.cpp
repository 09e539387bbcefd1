// queue.Queue / LifoQueue / PriorityQueue: get and put park on the server when they must wait.
#include <algorithm>

#include "objects.hpp"

namespace zmanager::sync {

QueueObject::QueueObject(Order order, Int maxsize) : order_(order), maxsize_(maxsize) {}

bool QueueObject::full() const {
  return maxsize_ > 0 && static_cast<Int>(items_.size()) >= maxsize_;
}

void QueueObject::push(Value item) {
  // Python's heapq compares the new item on its way up: one of another kind is a TypeError.
  if (order_ == Order::kPriority && !items_.empty()) check_comparable(items_.front(), item);
  ++unfinished_;
  items_.push_back(std::move(item));
  // Python's heapq on a list, which orders by `<`: the smallest item comes out first.
  if (order_ == Order::kPriority) std::push_heap(items_.begin(), items_.end(), std::greater<>());
}

Value QueueObject::pop() {
  Value v;
  switch (order_) {
    case Order::kFifo:
      v = std::move(items_.front());
      items_.pop_front();
      break;
    case Order::kLifo:
      v = std::move(items_.back());
      items_.pop_back();
      break;
    case Order::kPriority:
      std::pop_heap(items_.begin(), items_.end(), std::greater<>());
      v = std::move(items_.back());
      items_.pop_back();
      break;
  }
  return v;
}

void QueueObject::hand_over() {
  for (bool moved = true; moved;) {
    moved = false;
    while (!items_.empty() && !getters_.empty()) {
      std::uint64_t session = getters_.front_session();
      auto reply = getters_.take();
      if (!reply.caller_alive()) continue;  // the item would be lost with the reply
      undone_.add(session);
      reply.send(pop());
      moved = true;
    }
    while (!full() && !putters_.empty()) {
      auto putter = putters_.take();
      push(std::move(putter.item));
      putter.reply.send();
      moved = true;
    }
  }
}

Deferred<void> QueueObject::put(Value item, bool block, Seconds timeout) {
  // Python checks put()'s timeout only on a bounded queue, where put() can wait at all.
  auto limit = maxsize_ > 0 ? queue_wait_limit(block, timeout) : WaitLimit{};
  if (!full()) {
    push(std::move(item));
    hand_over();
    return {};
  }
  if (!waits(limit)) throw Full("Full");
  putters_.park(Putter{std::move(item), defer<void>()}, limit,
                [](Putter& p) { p.reply.fail(Full("Full")); });
  return Deferred<void>::pending();
}

void QueueObject::put_nowait(Value item) {
  put(std::move(item), false, std::nullopt);
}

Deferred<Value> QueueObject::get(bool block, Seconds timeout) {
  auto limit = queue_wait_limit(block, timeout);
  if (!items_.empty()) {
    Value v = pop();
    undone_.add(calling_session());
    hand_over();  // room for a parked put
    return v;
  }
  if (!waits(limit)) throw Empty("Empty");
  getters_.park(defer<Value>(), limit, [](Responder<Value>& r) { r.fail(Empty("Empty")); });
  return Deferred<Value>::pending();
}

Value QueueObject::get_nowait() {
  return std::move(get(false, std::nullopt).value());
}

void QueueObject::task_done() {
  if (unfinished_ <= 0) throw ValueError("task_done() called too many times");
  undone_.pay(calling_session(), 1);
  finish_tasks(1);
}

void QueueObject::finish_tasks(Int n) {
  unfinished_ -= std::min(n, unfinished_);
  if (unfinished_ == 0) joiners_.drain([](Responder<void>& r) { r.send(); });
}

void QueueObject::on_session_end(std::uint64_t session) {
  getters_.cancel(session);
  putters_.cancel(session);
  joiners_.cancel(session);
  // The items it got are not put back (it may have done the work; a second run could do it
  // twice): they count as done, so that join() does not wait for them forever.
  if (Int undone = undone_.settle(session); undone > 0) finish_tasks(undone);
}

Deferred<void> QueueObject::join() {
  if (unfinished_ == 0) return {};
  joiners_.park(defer<void>());
  return Deferred<void>::pending();
}

}  // namespace zmanager::sync
