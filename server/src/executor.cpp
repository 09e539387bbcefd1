#include "executor.hpp"

#include <algorithm>

#include "zmanager/wire/log.hpp"

namespace zmanager::server {
namespace {
// The strands this thread is running now, innermost last.
thread_local std::vector<const Strand*> active_strands;

struct ActiveStrand {
  explicit ActiveStrand(const Strand* s) { active_strands.push_back(s); }
  ~ActiveStrand() { active_strands.pop_back(); }
};

// A busy object yields its thread after this many calls so that others get a turn.
constexpr int kCallsPerTurn = 64;
}  // namespace

WorkerPool::WorkerPool(std::size_t threads) {
  for (std::size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { run(); });
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
  cv_.notify_one();
}

void WorkerPool::run() {
  while (true) {
    Task task;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !tasks_.empty(); });
      if (stopping_) return;
      task = std::move(tasks_.front());
      tasks_.pop_front();
    }
    try {
      task();
    } catch (const std::exception& e) {
      // Tasks answer their own failures; one that still throws must not take the server down.
      log::error("a server task failed: ", e.what());
    }
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
