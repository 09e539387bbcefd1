// Real processes for tests: run a function in a forked child, or a built program, and wait for
// it with a deadline (never forever).
#pragma once

#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace test {

class Child {
 public:
  /// Forks; the child runs `body` and exits with its return value (1 if it throws). Only for a
  /// process with no other threads yet: a fork copies locks other threads may hold (the
  /// sanitizers' allocators among them). Client processes are spawned instead.
  static Child fork(const std::function<int()>& body) {
    pid_t pid = fork_tied();
    if (pid == 0) {
      int code = 1;
      try {
        code = body();
      } catch (const std::exception& e) {
        std::fprintf(stderr, "child failed: %s\n", e.what());
      }
      std::fflush(nullptr);
      ::_exit(code);
    }
    return Child(pid);
  }

  /// Like fork(), giving the body a `report(line)` function whose lines the parent reads with
  /// read_line() (a server telling its address, say).
  static Child fork_reporting(
      const std::function<int(const std::function<void(const std::string&)>&)>& body) {
    int fds[2];
    if (::pipe(fds) != 0) throw std::runtime_error("pipe failed");
    Child c = fork([&] {
      ::close(fds[0]);
      return body([fd = fds[1]](const std::string& line) {
        std::string text = line + "\n";
        if (::write(fd, text.data(), text.size()) < 0) std::perror("report");
      });
    });
    ::close(fds[1]);
    c.stdout_fd_ = fds[0];
    return c;
  }

  /// Starts a program (fork + exec: nothing of this process's state comes along); its stdout is
  /// readable with read_line().
  static Child spawn(const std::vector<std::string>& argv) {
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    int out[2];
    if (::pipe(out) != 0) throw std::runtime_error("pipe failed");
    pid_t pid = fork_tied();
    if (pid == 0) {
      ::dup2(out[1], STDOUT_FILENO);
      ::close(out[0]);
      ::close(out[1]);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    ::close(out[1]);
    Child c(pid);
    c.stdout_fd_ = out[0];
    return c;
  }

  Child(Child&& o) noexcept
      : pid_(std::exchange(o.pid_, -1)), stdout_fd_(std::exchange(o.stdout_fd_, -1)) {}
  Child& operator=(Child&&) = delete;
  ~Child() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (stdout_fd_ >= 0) ::close(stdout_fd_);
  }

  pid_t pid() const { return pid_; }

  /// The exit code, or nullopt if it did not exit within `timeout` (it is then killed).
  /// A child killed by a signal reports 128 + the signal.
  std::optional<int> wait(std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
    int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
    if (fd < 0) throw std::runtime_error("pidfd_open failed");
    pollfd p{fd, POLLIN, 0};
    int ready = ::poll(&p, 1, static_cast<int>(timeout.count()));
    ::close(fd);
    if (ready <= 0) return std::nullopt;
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
  }

  /// One line of the child's stdout, or nullopt at EOF or after `timeout`.
  std::optional<std::string> read_line(
      std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    std::string line;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      pollfd p{stdout_fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char c;
      if (::read(stdout_fd_, &c, 1) != 1) return line.empty() ? std::nullopt : std::optional(line);
      if (c == '\n') return line;
      line += c;
    }
  }

  void signal(int sig) { ::kill(pid_, sig); }

 private:
  explicit Child(pid_t pid) : pid_(pid) {}

  // fork(), with the child tied to this process: a test that dies (a failed assertion under a
  // sanitizer, a timeout) takes its children with it instead of leaving servers behind.
  static pid_t fork_tied() {
    std::fflush(nullptr);
    pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(1);
    }
    return pid;
  }
  pid_t pid_;
  int stdout_fd_ = -1;
};

}  // namespace test
