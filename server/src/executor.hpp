// Threads that run methods, and the strands that make each object a monitor on top of them.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace zmanager::server {

using Task = std::function<void()>;

/// A task borrowed, not owned: what Strand::try_run_here() runs at once needs no copy, where a
/// Task costs an allocation whenever its captures outgrow std::function's small buffer.
class TaskRef {
 public:
  template <class F>
  TaskRef(F& f) : object_(&f), call_([](void* o) { (*static_cast<F*>(o))(); }) {}
  void operator()() const { call_(object_); }

 private:
  void* object_;
  void (*call_)(void*);
};

class WorkerPool {
 public:
  explicit WorkerPool(std::size_t threads);
  ~WorkerPool();  // runs nothing more; joins
  void submit(Task task);
  void stop();

  /// Serves on the calling thread, as one more member of the pool, until `done()`: runs tasks
  /// and, whenever no other thread does, `poll` (one step of the server's I/O loop). The thread
  /// that reads a request then runs it itself, with no hand-off to another thread, while an
  /// idle thread takes over the polling (leader/followers). One thread polls at a time.
  void serve(const std::function<void()>& poll, const std::function<bool()>& done);
  /// Wakes every idle thread (so that serve() sees `done()`).
  void wake_all();
  /// True on the thread that holds the polling now (it may be running a call it lent it for).
  static bool polling_here();
  /// True on a thread inside a poll step, whether or not it still holds the polling (a slow
  /// call's polling may have been taken over; its step ends when the call returns).
  static bool in_poll_step();

  /// Called by the polling thread before it runs a call itself that may take long: if the call
  /// is still running after `kLendGrace`, an idle thread takes the polling over (and the rest of
  /// the step with it). Returns the loan, for reclaim_polling().
  std::uint64_t lend_polling();
  /// After the call: true if the polling is still this thread's. False if it was taken over:
  /// the caller must then leave the poll step at once, touching nothing of it.
  bool reclaim_polling(std::uint64_t loan);

  /// How long a call may run on the polling thread before another thread takes the polling.
  /// Handing it over before every call cost a thread wake-up per call (the largest cost of a
  /// call on a small machine); lending it costs two atomic operations, and bounds how long a
  /// slow call delays the reading of other requests. Go's scheduler retakes a processor from
  /// a blocked thread the same way.
  static constexpr std::chrono::microseconds kLendGrace{1000};

 private:
  void run(const std::function<bool()>& done);
  /// Runs one poll step on this thread, which holds the polling (lock held on entry and exit).
  void poll_here(std::unique_lock<std::mutex>& lock);
  /// One idle thread watches the loans: true when it has taken the polling over.
  bool watch_loans(std::unique_lock<std::mutex>& lock);
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Task> tasks_;
  bool stopping_ = false;
  const std::function<void()>* poll_ = nullptr;  // set while serve() runs
  bool polling_ = false;                         // a thread is running poll_
  std::size_t idle_ = 0;                         // threads waiting for work

  // Loans of the polling (lend_polling()). The holder writes `loans_` and `lent_` without the
  // mutex, on every call; the watcher samples them once per grace period.
  std::atomic<std::uint64_t> loans_{0};  // loans made so far
  std::atomic<std::uint64_t> lent_{0};   // the loan running now; 0: none
  std::atomic<bool> watcher_asleep_{false};
  bool watching_ = false;           // an idle thread is the watcher (under mu_)
  std::uint64_t watched_loan_ = 0;  // the watcher's last samples (under mu_)
  std::chrono::steady_clock::time_point watched_since_;
  std::uint64_t watched_count_ = 0;
  int quiet_periods_ = 0;
  std::vector<std::thread> threads_;
};

/// Runs the tasks posted to it one at a time, in order, on the pool: the calls on one object.
/// A task that calls into a strand already running on its own thread (a method calling its own
/// object through a proxy) runs at once instead of queueing behind itself.
class Strand : public std::enable_shared_from_this<Strand> {
 public:
  explicit Strand(WorkerPool& pool) : pool_(pool) {}
  void post(Task task);
  /// Runs `task` on this thread if the strand is idle or already running on this thread;
  /// returns false (running nothing) otherwise.
  bool try_run_here(TaskRef task);

 private:
  void drain();
  bool running_on_this_thread() const;

  WorkerPool& pool_;
  std::mutex mu_;
  std::deque<Task> queue_;
  bool running_ = false;
};

}  // namespace zmanager::server
