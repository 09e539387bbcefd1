// Threads that run methods, and the strands that make each object a monitor on top of them.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace zmanager::server {

using Task = std::function<void()>;

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
  /// True on the thread running `poll` now.
  static bool polling_here();

 private:
  void run(const std::function<bool()>& done);
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Task> tasks_;
  bool stopping_ = false;
  const std::function<void()>* poll_ = nullptr;  // set while serve() runs
  bool polling_ = false;                         // a thread is running poll_
  std::size_t idle_ = 0;                         // threads waiting for work
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
  bool try_run_here(const Task& task);

 private:
  void drain();
  bool running_on_this_thread() const;

  WorkerPool& pool_;
  std::mutex mu_;
  std::deque<Task> queue_;
  bool running_ = false;
};

}  // namespace zmanager::server
