#include "executor.hpp"

#include <algorithm>

#include "zmanager/wire/log.hpp"

namespace zmanager::server {
namespace {
// The strands this thread is running now, innermost last.
thread_local std::vector<const Strand*> active_strands;
// This thread is running the pool's poll step.
thread_local bool polling_on_this_thread = false;

struct ActiveStrand {
  explicit ActiveStrand(const Strand* s) { active_strands.push_back(s); }
  ~ActiveStrand() { active_strands.pop_back(); }
};

// A busy object yields its thread after this many calls so that others get a turn.
constexpr int kCallsPerTurn = 64;
}  // namespace

WorkerPool::WorkerPool(std::size_t threads) {
  for (std::size_t i = 0; i < threads; ++i)
    threads_.emplace_back([this] { run([] { return false; }); });
}

WorkerPool::~WorkerPool() {
  stop();
}

void WorkerPool::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
  std::deque<Task> left;
  {
    std::lock_guard lock(mu_);
    left.swap(tasks_);
  }
  // Destroying unrun tasks releases what they hold (their replies fail as dropped).
}

void WorkerPool::submit(Task task) {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    tasks_.push_back(std::move(task));
  }
  // The polling thread wakes a helper once its step is over (see run()), when it knows whether
  // it will run the task itself.
  if (!polling_on_this_thread) cv_.notify_one();
}

bool WorkerPool::polling_here() {
  return polling_on_this_thread;
}

void WorkerPool::wake_all() {
  { std::lock_guard lock(mu_); }
  cv_.notify_all();
}

void WorkerPool::serve(const std::function<void()>& poll, const std::function<bool()>& done) {
  {
    std::lock_guard lock(mu_);
    poll_ = &poll;
  }
  cv_.notify_all();
  run(done);
  std::unique_lock lock(mu_);
  poll_ = nullptr;
  cv_.wait(lock, [&] { return !polling_; });  // `poll` belongs to the caller
}

void WorkerPool::run(const std::function<bool()>& done) {
  std::unique_lock lock(mu_);
  while (!stopping_ && !done()) {
    if (!tasks_.empty()) {
      Task task = std::move(tasks_.front());
      tasks_.pop_front();
      lock.unlock();
      try {
        task();
      } catch (const std::exception& e) {
        // Tasks answer their own failures; one that still throws must not take the server down.
        log::error("a server task failed: ", e.what());
      }
      task = nullptr;  // what the task held is released outside the lock
      lock.lock();
      continue;
    }
    if (poll_ && !polling_) {
      polling_ = true;
      const auto* poll = poll_;
      lock.unlock();
      polling_on_this_thread = true;
      try {
        (*poll)();
      } catch (const std::exception& e) {
        log::error("the server's poll step failed: ", e.what());
      }
      polling_on_this_thread = false;
      lock.lock();
      polling_ = false;
      if (!poll_) {
        cv_.notify_all();  // serving is over
        continue;
      }
      // This thread runs the first task it read; as many idle threads as there are other tasks
      // plus the polling wake up (more would only wake to find nothing).
      for (std::size_t wake = std::min(tasks_.size(), idle_); wake > 0; --wake) cv_.notify_one();
      continue;
    }
    ++idle_;
    cv_.wait(lock);
    --idle_;
  }
}

void Strand::post(Task task) {
  {
    std::lock_guard lock(mu_);
    queue_.push_back(std::move(task));
    if (running_) return;
    running_ = true;
  }
  pool_.submit([self = shared_from_this()] { self->drain(); });
}

void Strand::drain() {
  ActiveStrand active(this);
  for (int i = 0; i < kCallsPerTurn; ++i) {
    Task task;
    {
      std::lock_guard lock(mu_);
      if (queue_.empty()) {
        running_ = false;
        return;
      }
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    task();
  }
  pool_.submit([self = shared_from_this()] { self->drain(); });
}

bool Strand::running_on_this_thread() const {
  return std::find(active_strands.begin(), active_strands.end(), this) != active_strands.end();
}

bool Strand::try_run_here(const Task& task) {
  if (running_on_this_thread()) {
    task();
    return true;
  }
  {
    std::lock_guard lock(mu_);
    if (running_ || !queue_.empty()) return false;
    running_ = true;
  }
  {
    ActiveStrand active(this);
    task();
  }
  bool more;
  {
    std::lock_guard lock(mu_);
    more = !queue_.empty();
    if (!more) running_ = false;
  }
  if (more) pool_.submit([self = shared_from_this()] { self->drain(); });
  return true;
}

}  // namespace zmanager::server
