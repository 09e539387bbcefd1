// Starts a SyncManager, puts a task queue, a results dict, a lock-protected counter and a
// barrier on a shared board, runs N workers_worker processes on them and checks their work.
// Usage: workers_coordinator [--workers N] [--tasks T] [--worker PATH] [--address A]
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "board.hpp"

extern char** environ;

using namespace workers;
using Clock = std::chrono::steady_clock;

namespace {

struct Args {
  std::int64_t workers = 4;
  std::int64_t tasks = 40;
  std::string worker;
  std::string address = "tcp://127.0.0.1:0";
};

std::optional<Args> parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string_view opt = argv[i];
    if (i + 1 >= argc) return std::nullopt;
    std::string value = argv[++i];
    if (opt == "--workers")
      a.workers = std::stoll(value);
    else if (opt == "--tasks")
      a.tasks = std::stoll(value);
    else if (opt == "--worker")
      a.worker = value;
    else if (opt == "--address")
      a.address = value;
    else
      return std::nullopt;
  }
  if (a.workers < 1 || a.tasks < 0) return std::nullopt;
  return a;
}

/// The worker processes. Each is watched through a pidfd, so that waiting for their exit can
/// have a deadline (waitpid cannot) without polling in a sleep loop.
class Workers {
 public:
  Workers() = default;
  Workers(const Workers&) = delete;
  Workers& operator=(const Workers&) = delete;
  // Whatever went wrong, no worker outlives the coordinator (nor the server it uses).
  ~Workers() { kill_all(); }

  void spawn(std::vector<std::string> args, std::vector<std::string> env) {
    std::vector<char*> argv, envp;
    for (auto& a : args) argv.push_back(a.data());
    for (auto& e : env) envp.push_back(e.data());
    argv.push_back(nullptr);
    envp.push_back(nullptr);
    // posix_spawn rather than fork: this process has threads (the manager's connection).
    pid_t pid;
    if (int rc = ::posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), envp.data()))
      throw std::runtime_error("cannot start " + args[0] + ": " + std::strerror(rc));
    int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    if (fd < 0) {
      int err = errno;
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      throw std::runtime_error(std::string("pidfd_open: ") + std::strerror(err));
    }
    children_.push_back({pid, fd, std::nullopt});
  }

  /// The first worker found to have failed, without waiting.
  std::optional<std::string> failure() {
    reap(0);
    for (std::size_t i = 0; i < children_.size(); ++i) {
      auto status = children_[i].status;
      if (status && *status != 0) return "worker " + std::to_string(i) + " " + describe(*status);
    }
    return std::nullopt;
  }

  /// False if some worker is still running at `deadline`.
  bool wait_all(Clock::time_point deadline) {
    while (running() > 0) {
      auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) return false;
      reap(static_cast<int>(left.count()));
    }
    return true;
  }

 private:
  struct Child {
    pid_t pid;
    int pidfd;
    std::optional<int> status;  // wait status once exited
  };

  std::size_t running() const {
    std::size_t n = 0;
    for (auto& c : children_) n += !c.status;
    return n;
  }

  /// Collects the workers that exit within `timeout_ms`.
  void reap(int timeout_ms) {
    std::vector<pollfd> fds;
    std::vector<Child*> who;
    for (auto& c : children_) {
      if (c.status) continue;
      fds.push_back({c.pidfd, POLLIN, 0});
      who.push_back(&c);
    }
    if (fds.empty() || ::poll(fds.data(), fds.size(), timeout_ms) <= 0) return;
    for (std::size_t i = 0; i < fds.size(); ++i)
      if (fds[i].revents) collect(*who[i]);
  }

  static void collect(Child& c) {
    int status = 0;
    ::waitpid(c.pid, &status, 0);
    ::close(c.pidfd);
    c.status = status;
  }

  void kill_all() {
    for (auto& c : children_) {
      if (c.status) continue;
      ::kill(c.pid, SIGKILL);
      collect(c);
    }
  }

  static std::string describe(int status) {
    if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status)) return "was killed by signal " + std::to_string(WTERMSIG(status));
    return "ended with wait status " + std::to_string(status);
  }

  std::vector<Child> children_;
};

/// This process's environment with the authkey set. The key goes in the environment, never on
/// the command line: any user can read a command line (ps, /proc/PID/cmdline), while
/// /proc/PID/environ is readable by the owner only.
std::vector<std::string> worker_environment(const std::string& authkey) {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e)
    if (!std::string_view(*e).starts_with("ZMANAGER_AUTHKEY=")) env.emplace_back(*e);
  env.push_back("ZMANAGER_AUTHKEY=" + authkey);
  return env;
}

void check(bool ok, const std::string& what) {
  if (!ok) throw std::runtime_error(what);
}

int run(Args a) {
  // Installed or built, the two programs sit side by side.
  if (a.worker.empty())
    a.worker = std::filesystem::read_symlink("/proc/self/exe").parent_path() / "workers_worker";
  zmanager::SyncManager manager({.address = a.address});
  manager.register_shared_dict(kBoard);
  manager.start();  // forks the server: first, while this process has no other threads

  auto tasks = manager.JoinableQueue<Task>();
  auto results = manager.dict<std::int64_t, std::int64_t>();
  auto done = manager.dict<std::int64_t, std::int64_t>();
  auto partials = manager.dict<std::int64_t, std::int64_t>();
  auto lock = manager.Lock();
  auto counter = manager.Value<std::int64_t>(0);
  auto barrier = manager.Barrier(a.workers);
  // The workers are other programs: the board, reached by name, hands them these objects.
  auto board = manager.shared_dict(kBoard);
  board["tasks"] = tasks;
  board["results"] = results;
  board["done"] = done;
  board["partials"] = partials;
  board["lock"] = lock;
  board["counter"] = counter;
  board["barrier"] = barrier;
  board["n_tasks"] = a.tasks;

  Workers workers;
  auto env = worker_environment(manager.authkey());
  for (std::int64_t i = 0; i < a.workers; ++i)
    workers.spawn({a.worker, "--address", manager.address(), "--id", std::to_string(i)}, env);

  // The sentinels come after the tasks, so a worker stops taking only once every task is taken;
  // some peers may still be working on theirs, which is why phase 2 waits at the barrier.
  for (std::int64_t k = 0; k < a.tasks; ++k) tasks.put(k);
  for (std::int64_t i = 0; i < a.workers; ++i) tasks.put(Task{});

  // join() returns once every task and sentinel is marked done. It is awaited in short slices so
  // that a worker that dies is reported at once rather than when the wait limit runs out.
  auto joined = tasks.join_async();
  auto deadline = Clock::now() + kWait;
  while (!joined.wait_for(std::chrono::milliseconds(100))) {
    if (auto failed = workers.failure()) throw std::runtime_error(*failed);
    check(Clock::now() < deadline, "the tasks were not all done in time");
  }
  joined.get();
  check(workers.wait_all(Clock::now() + kWait), "the workers did not all exit in time");
  if (auto failed = workers.failure()) throw std::runtime_error(*failed);

  std::map<std::int64_t, std::int64_t> expected;
  std::int64_t total = 0;
  for (std::int64_t k = 0; k < a.tasks; ++k) total += expected[k] = k * k;
  check(results.copy() == expected, "the results dict is not every task's square");
  std::int64_t count = counter.get();
  check(count == a.tasks, "counter is " + std::to_string(count) + ", expected " +
                              std::to_string(a.tasks) + " (an increment was lost)");
  auto per_worker = done.copy();
  std::string split;
  std::int64_t sum_done = 0;
  for (auto& [id, n] : per_worker) {
    if (!split.empty()) split += '+';
    split += std::to_string(n);
    sum_done += n;
  }
  check(static_cast<std::int64_t>(per_worker.size()) == a.workers && sum_done == a.tasks,
        "the workers report " + std::to_string(sum_done) + " tasks done");
  std::cout << "phase 1: " << a.tasks << " tasks by " << a.workers << " workers (" << split
            << "), counter " << count << std::endl;

  std::int64_t sum_partials = 0;
  for (std::int64_t id = 0; id < a.workers; ++id) {
    std::int64_t want = 0;
    for (auto& [k, square] : expected)
      if (in_share(k, id, a.workers)) want += square;
    std::int64_t got = partials.get(id, -1);
    check(got == want, "worker " + std::to_string(id) + "'s partial sum is " + std::to_string(got) +
                           ", expected " + std::to_string(want));
    sum_partials += got;
  }
  check(sum_partials == total, "the partial sums do not add up");
  std::cout << "phase 2: " << a.workers << " partial sums, total " << sum_partials << std::endl;
  std::cout << "ok" << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::optional<Args> args;
  try {
    args = parse(argc, argv);
  } catch (const std::exception&) {  // a number that std::stoll rejects
  }
  if (!args) {
    std::cerr << "usage: workers_coordinator [--workers N>=1] [--tasks T>=0] [--worker PATH]"
                 " [--address tcp://127.0.0.1:PORT]\n";
    return 2;
  }
  try {
    return run(*args);
  } catch (const std::exception& e) {
    std::cerr << "workers_coordinator: " << e.what() << '\n';
    return 1;
  }
}
