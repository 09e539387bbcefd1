#include "executor.hpp"

#include <algorithm>

#include "zmanager/wire/log.hpp"

namespace zmanager::server {
namespace {
// The strands this thread is running now, innermost last.
thread_local std::vector<const Strand*> active_strands;
// The pool whose poll step this thread runs; null outside a step.
thread_local const WorkerPool* polling_pool = nullptr;
// This thread holds the polling (false once a slow call's polling was taken over).
thread_local bool polling_on_this_thread = false;
// The loan this thread has made of the polling while it runs a call; 0: none.
thread_local std::uint64_t current_loan = 0;

struct ActiveStrand {
  explicit ActiveStrand(const Strand* s) { active_strands.push_back(s); }
  ~ActiveStrand() { active_strands.pop_back(); }
};

// A busy object yields its thread after this many calls so that others get a turn.
constexpr int kCallsPerTurn = 64;
// Grace periods without a loan after which the watcher sleeps until the next loan wakes it
// (a server with nothing to do wakes no thread).
constexpr int kQuietPeriods = 20;
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
  if (!polling_here()) cv_.notify_one();
}

bool WorkerPool::polling_here() {
  if (!polling_on_this_thread) return false;
  return current_loan == 0 || polling_pool->lent_.load() == current_loan;
}

bool WorkerPool::in_poll_step() {
  return polling_pool != nullptr;
}

std::uint64_t WorkerPool::lend_polling() {
  if (current_loan != 0) return 0;  // already lent: the outer loan covers this call
  std::uint64_t loan = loans_.load(std::memory_order_relaxed) + 1;
  loans_.store(loan, std::memory_order_relaxed);
  // Sequentially consistent with the watcher's going to sleep (watch_loans()): either it sees
  // this loan, or this sees it asleep and wakes it.
  lent_.store(loan);
  current_loan = loan;
  if (watcher_asleep_.load()) {
    std::lock_guard lock(mu_);
    cv_.notify_all();
  }
  return loan;
}

bool WorkerPool::reclaim_polling(std::uint64_t loan) {
  if (loan == 0) return polling_here();
  current_loan = 0;
  if (lent_.compare_exchange_strong(loan, 0)) return true;
  polling_on_this_thread = false;  // the watcher took it, and the step with it
  return false;
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
      poll_here(lock);
      continue;
    }
    ++idle_;
    if (poll_ && polling_ && !watching_) {
      watching_ = true;
      bool took_over = watch_loans(lock);
      watching_ = false;
      --idle_;
      if (took_over) {
        cv_.notify_one();  // another idle thread becomes the watcher
        poll_here(lock);
      }
      continue;
    }
    cv_.wait(lock);
    --idle_;
  }
}

void WorkerPool::poll_here(std::unique_lock<std::mutex>& lock) {
  const auto* poll = poll_;
  lock.unlock();
  polling_on_this_thread = true;
  polling_pool = this;
  try {
    (*poll)();
  } catch (const std::exception& e) {
    log::error("the server's poll step failed: ", e.what());
  }
  polling_pool = nullptr;
  // False if the polling was taken over while this thread ran a call it lent it for.
  bool still_polling = polling_on_this_thread;
  polling_on_this_thread = false;
  current_loan = 0;
  lock.lock();
  if (still_polling) {
    polling_ = false;
    if (!poll_) {
      cv_.notify_all();  // serving is over
      return;
    }
  }
  // This thread runs the first task it read; as many idle threads as there are other tasks
  // plus the polling wake up (more would only wake to find nothing).
  for (std::size_t wake = std::min(tasks_.size(), idle_); wake > 0; --wake) cv_.notify_one();
}

bool WorkerPool::watch_loans(std::unique_lock<std::mutex>& lock) {
  std::uint64_t loan = lent_.load();
  auto now = std::chrono::steady_clock::now();
  // The same loan a whole grace period later (this thread can be woken earlier, by work): the
  // call is slow, the polling is taken.
  if (loan != 0 && loan == watched_loan_ && now - watched_since_ >= kLendGrace &&
      lent_.compare_exchange_strong(loan, 0)) {
    watched_loan_ = 0;
    quiet_periods_ = 0;
    return true;  // polling_ stays set: the polling passes from the lender to this thread
  }
  if (loan != watched_loan_) watched_since_ = now;
  watched_loan_ = loan;
  std::uint64_t count = loans_.load();
  quiet_periods_ = (loan == 0 && count == watched_count_) ? quiet_periods_ + 1 : 0;
  watched_count_ = count;
  if (quiet_periods_ < kQuietPeriods) {
    cv_.wait_for(lock, kLendGrace);
    return false;
  }
  // Nothing lent for a while: sleep until lend_polling() (or work, or the end) wakes this
  // thread. The mutex is held from here into the wait, so a wake-up cannot fall in between.
  watcher_asleep_.store(true);
  if (lent_.load() == 0 && loans_.load() == count) cv_.wait(lock);
  watcher_asleep_.store(false);
  quiet_periods_ = 0;
  return false;
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

bool Strand::try_run_here(TaskRef task) {
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
