// bench_zmanager: one scenario of the side-by-side benchmark (bench/README.md) run on zmanager.
//   bench_zmanager --scenario NAME [--seconds S] [--window W] [--clients N] [--items K]
//                  [--transport zmq|unix] [--batch on|off] [--spin US] [--segments on|off]
// prints one JSON line on stdout, e.g.
//   {"impl": "zmanager", "scenario": "sync_add", "value": 2450.3, "unit": "ops/s", ...}
//
// Processes: the server is forked first, while this process has no thread, and runs a
// SyncManager's serve_forever(); its pid is what the memory scenarios read VmRSS of. This
// process then connects as a client (which starts the connection's I/O thread), so any further
// client process is this program run again (fork + exec) with a hidden `--child ROLE`: forking
// a process that has threads and going on without exec is unsafe. The authkey reaches them in
// ZMANAGER_AUTHKEY, never on a command line (which any user can read).
//
// Client processes talk to this one over two pipes, apart from the server so that signalling
// does not add to the load being measured: fd 3 carries their text lines up ("ready 2",
// "result 2 8123 1.0004"), fd 4 carries one byte each to start them all at once; closing its
// write end tells a producer to stop.
//
// Bounds: every wait for a process, a pipe or a future has a deadline; a synchronous call to a
// server that stopped answering fails after the session ttl (10 s); a watchdog alarm ends the
// run (killing every child) well within 60 s; children die with this process (PDEATHSIG).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <zmanager/zmanager.hpp>

#include "frame_ring.hpp"
#include "proc_status.hpp"

extern char** environ;

struct Maths {
  std::int64_t add(std::int64_t x, std::int64_t y) { return x + y; }
};
ZMANAGER_EXPOSE(Maths, add)

namespace {

using Clock = std::chrono::steady_clock;
using Seconds = std::chrono::duration<double>;

constexpr const char* kImpl = "zmanager";
constexpr const char* kLocalImpl = "zmanager_local";  // --transport unix
constexpr const char* kBoard = "board";
constexpr std::chrono::milliseconds kWarmup{200};
// Anything that should take milliseconds (a process starting and connecting, a call completing)
// gets this long before the run is declared failed.
constexpr std::chrono::seconds kStepLimit{15};
// The whole run ends by then, whatever happens: the spec allows 60 s.
constexpr unsigned kWatchdogSeconds = 55;
constexpr double kMaxSeconds = 30;
constexpr int kUpFd = 3;  // a client process's fds, fixed by the spawner
constexpr int kGoFd = 4;

const std::vector<std::string_view> kScenarios = {
    "sync_add",           "pipelined_add",    "dict_set",       "dict_get",       "queue_64B",
    "lock_pair",          "clients_sync_add", "queue_1MiB",     "parked_waiters", "dict_1M_rss",
    "clients_window_add", "frames_4k",        "frames_4k_queue"};

struct Args {
  std::string scenario;
  double seconds = 1.0;
  // 0: the scenario's own default.
  std::int64_t window = 0;
  std::int64_t clients = 0;
  std::int64_t items = 0;
  // A client process (hidden options).
  std::string child;
  std::string address;
  std::int64_t id = 0;
  std::int64_t bytes = 0;
  // "zmq": clients connect through ZeroMQ (tcp://127.0.0.1); "unix": through the server's
  // same-host transport (ServerOptions::local_address).
  std::string transport = "zmq";
  // Calls in flight are sent through a zmanager::Batch: many to a message.
  bool batch = false;
  // ManagerOptions::spin_before_sleep of every client, in microseconds; -1: the default.
  std::int64_t spin_us = -1;
  // Shared segments for same-host clients' large blobs (ServerOptions::segment_pool_bytes);
  // off: every byte goes through the socket, as it would between hosts.
  bool segments = true;
};

bool parse_on_off(const std::string& s, const char* what) {
  if (s != "on" && s != "off")
    throw std::invalid_argument(std::string(what) + " must be on or off");
  return s == "on";
}

std::int64_t parse_int(const std::string& s, std::int64_t lo, std::int64_t hi, const char* what) {
  std::size_t used = 0;
  std::int64_t v = std::stoll(s, &used);
  if (used != s.size() || v < lo || v > hi)
    throw std::invalid_argument(std::string(what) + " must be an integer in [" +
                                std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return v;
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; i += 2) {
    std::string_view opt = argv[i];
    if (i + 1 >= argc) throw std::invalid_argument(std::string(opt) + " needs a value");
    std::string value = argv[i + 1];
    if (opt == "--scenario") {
      a.scenario = value;
    } else if (opt == "--seconds") {
      std::size_t used = 0;
      a.seconds = std::stod(value, &used);
      if (used != value.size() || !(a.seconds > 0 && a.seconds <= kMaxSeconds))
        throw std::invalid_argument("--seconds must be in (0, 30]: the run must end within 60 s");
    } else if (opt == "--window") {
      a.window = parse_int(value, 1, 4096, "--window");
    } else if (opt == "--clients") {
      a.clients = parse_int(value, 1, 64, "--clients");
    } else if (opt == "--items") {
      a.items = parse_int(value, 1, 10'000'000, "--items");
    } else if (opt == "--child") {
      a.child = value;
    } else if (opt == "--transport") {
      if (value != "zmq" && value != "unix")
        throw std::invalid_argument("--transport must be zmq or unix");
      a.transport = value;
    } else if (opt == "--segments") {
      a.segments = parse_on_off(value, "--segments");
    } else if (opt == "--batch") {
      a.batch = parse_on_off(value, "--batch");
    } else if (opt == "--address") {
      a.address = value;
    } else if (opt == "--id") {
      a.id = parse_int(value, 0, 1 << 20, "--id");
    } else if (opt == "--spin") {
      a.spin_us = parse_int(value, 0, 100'000, "--spin");
    } else if (opt == "--bytes") {
      a.bytes = parse_int(value, 1, std::int64_t{64} << 20, "--bytes");
    } else {
      throw std::invalid_argument("unknown option " + std::string(opt));
    }
  }
  if (a.child.empty() && a.scenario.empty()) throw std::invalid_argument("--scenario is required");
  return a;
}

Clock::duration to_clock(double seconds) {
  return std::chrono::duration_cast<Clock::duration>(Seconds(seconds));
}

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return Seconds(b - a).count();
}

// A view, so that a literal makes no string unless the check fails: run_window checks every
// call, and the allocation of its message was part of each measured call.
void check(bool ok, std::string_view what) {
  if (!ok) throw std::runtime_error(std::string(what));
}

void write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw std::runtime_error(std::string("write: ") + std::strerror(errno));
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

int poll_ms(Clock::time_point deadline, int cap_ms) {
  auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return static_cast<int>(std::clamp<long long>(left, 0, cap_ms));
}

// ---------------------------------------------------------------------------------------------
// Child processes and the watchdog

// Every live child, for the watchdog: a signal handler may read lock-free atomics only.
constexpr std::size_t kMaxChildren = 128;
std::array<std::atomic<pid_t>, kMaxChildren> g_children{};

void track(pid_t pid) {
  for (auto& slot : g_children) {
    pid_t empty = 0;
    if (slot.compare_exchange_strong(empty, pid)) return;
  }
  // Untracked, it would still die with us (PR_SET_PDEATHSIG); only the reaping is lost.
}

void untrack(pid_t pid) {
  for (auto& slot : g_children) {
    pid_t expected = pid;
    if (slot.compare_exchange_strong(expected, 0)) return;
  }
}

extern "C" void on_watchdog(int) {
  static const char message[] = "bench_zmanager: the run exceeded its time limit; stopped\n";
  if (::write(STDERR_FILENO, message, sizeof message - 1) < 0) {
    // Nothing else to do from a signal handler.
  }
  for (auto& slot : g_children) {
    pid_t pid = slot.load();
    if (pid <= 0) continue;
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  }
  ::_exit(124);
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "was killed by signal " + std::to_string(WTERMSIG(status));
  return "ended with wait status " + std::to_string(status);
}

/// One child process: killed and reaped on destruction unless it was reaped before.
class Child {
 public:
  Child() = default;
  explicit Child(pid_t pid) : pid_(pid) { track(pid); }
  Child(Child&& o) noexcept : pid_(std::exchange(o.pid_, -1)), status_(o.status_) {}
  Child& operator=(Child&&) = delete;
  Child(const Child&) = delete;
  ~Child() { kill_now(); }

  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0 && !status_; }
  const std::optional<int>& status() const { return status_; }

  /// Reaps it if it has exited; true if it has.
  bool poll() {
    if (!running()) return status_.has_value();
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) settle(status);
    return status_.has_value();
  }

  /// True once it has exited, false if it still runs at `deadline`.
  bool wait_until(Clock::time_point deadline) {
    while (!poll()) {
      if (Clock::now() >= deadline) return false;
      // waitpid cannot time out; the short sleep bounds both the wait and the lag.
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return true;
  }

  void kill_now() {
    if (!running()) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    if (::waitpid(pid_, &status, 0) == pid_) settle(status);
  }

 private:
  void settle(int status) {
    status_ = status;
    untrack(pid_);
  }

  pid_t pid_ = -1;
  std::optional<int> status_;
};

/// The server process: a SyncManager serving Maths and the shared board.
struct ServerProcess {
  Child child;
  std::string address;
};

int serve(const std::string& authkey, int address_fd, const std::string& transport, bool segments) {
  try {
    // Abstract (no file to remove), named after this process so that runs never collide.
    std::string local;
    if (transport == "unix") local = "unix://@zmanager-bench-" + std::to_string(::getpid());
    zmanager::SyncManager manager(
        {.address = "tcp://127.0.0.1:0",
         .local_address = local,
         .authkey = authkey,
         .segment_pool_bytes = segments ? zmanager::ManagerOptions{}.segment_pool_bytes : 0});
    manager.register_type<Maths>("Maths");
    manager.register_shared_dict(kBoard);
    zmanager::Server& server = manager.get_server();
    write_all(address_fd, (local.empty() ? server.address() : local) + "\n");
    ::close(address_fd);
    server.serve_forever();  // until SIGTERM from the parent
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "bench_zmanager server: " << e.what() << '\n';
    return 1;
  }
}

/// Forks the server. Must run before this process has any thread.
ServerProcess start_server(const std::string& authkey, const std::string& transport,
                           bool segments) {
  int fds[2];
  check(::pipe2(fds, O_CLOEXEC) == 0, std::string("pipe2: ") + std::strerror(errno));
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    ::close(fds[0]);
    // A server whose benchmark died would serve nobody forever.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(1);
    std::exit(serve(authkey, fds[1], transport, segments));
  }
  ::close(fds[1]);
  ServerProcess server{Child(pid), {}};
  std::string line;
  auto deadline = Clock::now() + kStepLimit;
  for (;;) {
    pollfd p{fds[0], POLLIN, 0};
    int ready = ::poll(&p, 1, poll_ms(deadline, 100));
    if (ready < 0 && errno == EINTR) continue;
    if (ready == 0) {
      check(Clock::now() < deadline, "the server did not report its address in time");
      continue;
    }
    char c;
    ssize_t n = ::read(fds[0], &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (c == '\n') break;
    line += c;
  }
  ::close(fds[0]);
  if (line.empty()) {
    server.child.wait_until(Clock::now() + std::chrono::seconds(2));
    auto status = server.child.status();
    throw std::runtime_error("the server did not start" +
                             (status ? " (it " + describe_status(*status) + ")" : std::string()));
  }
  server.address = line;
  return server;
}

/// Asks the server to stop (serve_forever ends on SIGTERM) and reaps it.
void stop_server(ServerProcess& server) {
  if (!server.child.running()) return;
  ::kill(server.child.pid(), SIGTERM);
  if (!server.child.wait_until(Clock::now() + std::chrono::seconds(10))) {
    server.child.kill_now();
    throw std::runtime_error("the server did not stop within 10 s of SIGTERM");
  }
  int status = *server.child.status();
  check(WIFEXITED(status) && WEXITSTATUS(status) == 0,
        "the server " + describe_status(status) + " when stopped");
}

std::vector<std::string> split_words(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> words;
  for (std::string w; in >> w;) words.push_back(w);
  return words;
}

/// Client processes: this program run again with `--child ROLE`, reporting on a shared pipe.
class ClientProcesses {
 public:
  /// `spin_us`: passed on to every child as --spin, unless -1.
  ClientProcesses(std::string address, const std::string& authkey, std::int64_t spin_us)
      : address_(std::move(address)), spin_us_(spin_us) {
    int up[2], go[2];
    check(::pipe2(up, O_CLOEXEC) == 0 && ::pipe2(go, O_CLOEXEC) == 0,
          std::string("pipe2: ") + std::strerror(errno));
    up_r_ = up[0], up_w_ = up[1], go_r_ = go[0], go_w_ = go[1];
    for (char** e = environ; *e; ++e)
      if (!std::string_view(*e).starts_with("ZMANAGER_AUTHKEY=")) env_.emplace_back(*e);
    env_.push_back("ZMANAGER_AUTHKEY=" + authkey);
  }
  ClientProcesses(const ClientProcesses&) = delete;
  ClientProcesses& operator=(const ClientProcesses&) = delete;
  ~ClientProcesses() {
    children_.clear();  // kills any still running
    for (int fd : {up_r_, up_w_, go_r_, go_w_})
      if (fd >= 0) ::close(fd);
  }

  std::size_t size() const { return children_.size(); }

  /// Starts `--child role --address A --id <next>` followed by `extra`.
  void spawn(const std::string& role, const std::vector<std::string>& extra) {
    std::vector<std::string> args = {"bench_zmanager",
                                     "--child",
                                     role,
                                     "--address",
                                     address_,
                                     "--id",
                                     std::to_string(children_.size())};
    args.insert(args.end(), extra.begin(), extra.end());
    if (spin_us_ >= 0) args.insert(args.end(), {"--spin", std::to_string(spin_us_)});
    // Everything the child needs is built before fork: after it, only async-signal-safe calls.
    std::vector<char*> argv, envp;
    for (auto& a : args) argv.push_back(a.data());
    for (auto& e : env_) envp.push_back(e.data());
    argv.push_back(nullptr);
    envp.push_back(nullptr);
    pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
    if (pid == 0) exec_child(parent, argv.data(), envp.data());
    children_.emplace_back(pid);
  }

  /// After the last spawn: the up pipe then ends (EOF) once every child has exited.
  void close_spawn_ends() {
    ::close(std::exchange(up_w_, -1));
    ::close(std::exchange(go_r_, -1));
  }

  /// Waits for `count` lines starting with `tag` (the words of each line, tag first); fails if a
  /// child fails, every child is gone, or `deadline` passes.
  std::vector<std::vector<std::string>> expect(std::string_view tag, std::size_t count,
                                               Clock::time_point deadline) {
    std::vector<std::vector<std::string>> lines;
    for (;;) {
      for (std::size_t nl;
           lines.size() < count && (nl = buffer_.find('\n')) != std::string::npos;) {
        auto words = split_words(buffer_.substr(0, nl));
        buffer_.erase(0, nl + 1);
        check(!words.empty() && words[0] == tag,
              "a client process sent \"" + (words.empty() ? std::string() : words[0]) +
                  "\" where \"" + std::string(tag) + "\" was expected");
        lines.push_back(std::move(words));
      }
      if (lines.size() == count) return lines;
      check_children();
      check(Clock::now() < deadline,
            "the client processes did not all report \"" + std::string(tag) + "\" in time (" +
                std::to_string(lines.size()) + " of " + std::to_string(count) + ")");
      pollfd p{up_r_, POLLIN, 0};
      int ready = ::poll(&p, 1, poll_ms(deadline, 100));
      if (ready <= 0) continue;
      char chunk[4096];
      ssize_t n = ::read(up_r_, chunk, sizeof chunk);
      if (n < 0 && errno == EINTR) continue;
      check(n != 0, "the client processes exited before all reported \"" + std::string(tag) + "\"");
      if (n < 0) throw std::runtime_error(std::string("read: ") + std::strerror(errno));
      buffer_.append(chunk, static_cast<std::size_t>(n));
    }
  }

  /// Starts every child at once: each waits for one byte.
  void go() { write_all(go_w_, std::string(children_.size(), 'g')); }

  /// Tells children that run until told (the producer) to stop: EOF on their go pipe.
  void stop() {
    if (go_w_ >= 0) ::close(std::exchange(go_w_, -1));
  }

  /// Every child exits with status 0 before `deadline`.
  void wait_exit(Clock::time_point deadline) {
    stop();
    for (std::size_t i = 0; i < children_.size(); ++i)
      check(children_[i].wait_until(deadline),
            "client process " + std::to_string(i) + " did not exit in time");
    check_children();
  }

 private:
  [[noreturn]] void exec_child(pid_t parent, char** argv, char** envp) {
    // This process has threads: only async-signal-safe calls until exec.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // a client must not outlive the benchmark
    if (::getppid() != parent) ::_exit(127);
    // Copies above 10 first, so that dup2 onto 3 and 4 always makes new, inheritable fds.
    int up = ::fcntl(up_w_, F_DUPFD, 10);
    int go = ::fcntl(go_r_, F_DUPFD, 10);
    if (up < 0 || go < 0 || ::dup2(up, kUpFd) < 0 || ::dup2(go, kGoFd) < 0) ::_exit(127);
    // Only the parent's stdout carries the JSON line.
    if (::dup2(STDERR_FILENO, STDOUT_FILENO) < 0) ::_exit(127);
    if (::close_range(kGoFd + 1, ~0U, 0) != 0) {
      ::close(up);
      ::close(go);
    }
    ::execve("/proc/self/exe", argv, envp);
    ::_exit(127);
  }

  void check_children() {
    for (std::size_t i = 0; i < children_.size(); ++i) {
      if (!children_[i].poll()) continue;
      int status = *children_[i].status();
      check(WIFEXITED(status) && WEXITSTATUS(status) == 0,
            "client process " + std::to_string(i) + " " + describe_status(status));
    }
  }

  std::string address_;
  std::int64_t spin_us_;
  std::vector<std::string> env_;
  std::vector<Child> children_;
  int up_r_ = -1, up_w_ = -1, go_r_ = -1, go_w_ = -1;
  std::string buffer_;
};

// ---------------------------------------------------------------------------------------------
// Measurement

struct Measured {
  std::int64_t ops = 0;
  double seconds = 0;
  std::vector<double> micros;  // per operation, when one-at-a-time
};

/// Runs `op` for the warm-up, then for `seconds`, timing each run.
template <class Op>
Measured time_each(double seconds, Op&& op) {
  auto warm_end = Clock::now() + kWarmup;
  while (Clock::now() < warm_end) op();
  Measured m;
  m.micros.reserve(1 << 16);
  auto start = Clock::now();
  auto end = start + to_clock(seconds);
  // One clock read per operation: each one's end is the next one's start.
  for (auto t = start; t < end;) {
    op();
    auto after = Clock::now();
    m.micros.push_back(std::chrono::duration<double, std::micro>(after - t).count());
    t = after;
  }
  m.ops = static_cast<std::int64_t>(m.micros.size());
  m.seconds = seconds_between(start, Clock::now());
  return m;
}

/// Keeps `window` calls in flight: a ring of futures where the oldest is awaited and its slot
/// refilled with a new call. `send(k)` starts call number k; `take(k, future)` completes it.
/// Counts the completions during `seconds` after the warm-up; the calls still in flight at the
/// end are completed (not counted) so nothing is left pending on the connection.
template <class Send, class Take>
Measured run_window(std::int64_t window, double seconds, Send&& send, Take&& take) {
  using Future = decltype(send(std::int64_t{}));
  auto w = static_cast<std::size_t>(window);
  std::vector<Future> ring(w);
  std::vector<std::int64_t> number(w);
  std::int64_t next = 0;
  for (std::size_t s = 0; s < w; ++s) {
    number[s] = next;
    ring[s] = send(next++);
  }
  auto await = [&](std::size_t s) {
    check(ring[s].wait_for(kStepLimit), "a call did not complete within 15 s");
    take(number[s], ring[s]);
  };

  Measured m;
  auto warm_end = Clock::now() + kWarmup;
  std::optional<Clock::time_point> start;
  Clock::time_point end;
  std::int64_t completed = 0, at_start = 0;
  for (std::size_t s = 0;; s = (s + 1) % w) {
    await(s);
    ++completed;
    auto t = Clock::now();
    if (!start && t >= warm_end) {
      start = t;
      at_start = completed;
      end = t + to_clock(seconds);
    } else if (start && t >= end) {
      m.ops = completed - at_start;
      m.seconds = seconds_between(*start, t);
      break;
    }
    number[s] = next;
    ring[s] = send(next++);
  }
  for (std::size_t s = 0; s < w; ++s)
    if (ring[s].valid()) await(s);
  return m;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(std::lround(p * static_cast<double>(v.size() - 1)))];
}

// ---------------------------------------------------------------------------------------------
// The JSON line

class Json {
 public:
  Json& str(const std::string& key, const std::string& value) {
    return raw(key, "\"" + value + "\"");  // names and units only: no escaping needed
  }
  Json& num(const std::string& key, double value) {
    check(std::isfinite(value), key + " is not a finite number");
    char buf[64];
    std::snprintf(buf, sizeof buf, std::fabs(value) >= 1000 ? "%.1f" : "%.3f", value);
    return raw(key, buf);
  }
  Json& integer(const std::string& key, std::int64_t value) {
    return raw(key, std::to_string(value));
  }
  /// `other`'s keys after these.
  Json& append(const Json& other) {
    body_ += (body_.empty() || other.body_.empty() ? "" : ", ") + other.body_;
    return *this;
  }
  std::string line() const { return "{" + body_ + "}"; }

 private:
  Json& raw(const std::string& key, const std::string& value) {
    body_ += (body_.empty() ? "\"" : ", \"") + key + "\": " + value;
    return *this;
  }
  std::string body_;
};

/// The result of a one-at-a-time scenario: rate and per-operation latency.
Json one_at_a_time(const Measured& m, const std::string& unit) {
  Json j;
  j.num("value", static_cast<double>(m.ops) / m.seconds)
      .str("unit", unit)
      .num("p50_us", percentile(m.micros, 0.5))
      .num("p99_us", percentile(m.micros, 0.99))
      .integer("n", m.ops);
  return j;
}

// ---------------------------------------------------------------------------------------------
// Client processes' side (--child ROLE)

void report(const std::string& line) {
  write_all(kUpFd, line + "\n");
}

/// Waits for the start byte; fails if the benchmark went away first.
void wait_go() {
  pollfd p{kGoFd, POLLIN, 0};
  int ready;
  do ready = ::poll(&p, 1, static_cast<int>(kStepLimit.count() * 1000));
  while (ready < 0 && errno == EINTR);
  check(ready == 1, "no start signal in time");
  char c;
  check(::read(kGoFd, &c, 1) == 1, "the benchmark stopped before the start");
}

/// For a producer, asked between puts: the go pipe's write end is closed when it should stop.
/// The pipe is polled at most once every kLookEvery, the clock read in between: Python's
/// producer only reads the clock, and a poll per put cost ours a system call per item (without
/// it, 64-byte items went 18% faster with 64 in flight, 32% with 256).
bool told_to_stop() {
  constexpr std::chrono::microseconds kLookEvery{200};
  static Clock::time_point next_look{};
  auto now = Clock::now();
  if (now < next_look) return false;
  next_look = now + kLookEvery;
  pollfd p{kGoFd, POLLIN, 0};
  return ::poll(&p, 1, 0) > 0;
}

void check_sum(std::int64_t k, std::int64_t got) {
  // The message is made only on failure: this runs once per measured call.
  if (got != k + 1)
    throw std::runtime_error("add(" + std::to_string(k) + ", 1) returned " + std::to_string(got));
}

/// `calls`: its own Maths object, add(k, 1) for --seconds, synchronously or --window in flight.
void child_calls(zmanager::SyncManager& m, const Args& a) {
  auto maths = m.create<Maths>("Maths");
  report("ready " + std::to_string(a.id));
  wait_go();
  Measured r;
  if (a.window <= 1) {
    std::int64_t k = 0;
    r = time_each(a.seconds, [&] {
      check_sum(k, maths.add(k, 1));
      ++k;
    });
  } else {
    auto async = maths.async();
    std::optional<zmanager::Batch> batch;
    if (a.batch) batch.emplace(maths);
    r = run_window(
        a.window, a.seconds, [&](std::int64_t k) { return async.add(k, 1); },
        [](std::int64_t k, zmanager::Future<std::int64_t>& f) { check_sum(k, f.get()); });
  }
  report("result " + std::to_string(a.id) + " " + std::to_string(r.ops) + " " +
         std::to_string(r.seconds));
}

/// `producer`: puts --bytes items on the board's queue until told to stop. A bounded queue may
/// be full, so every put has a timeout: a stopped consumer cannot hold the producer forever.
void child_producer(zmanager::SyncManager& m, const Args& a) {
  auto q = m.shared_dict(kBoard)["q"].as<zmanager::QueueProxy<zmanager::Bytes>>();
  zmanager::Bytes item(static_cast<std::size_t>(a.bytes));
  std::memset(item.data(), 'x', item.size());
  constexpr std::chrono::milliseconds kPutTimeout{500};
  report("ready " + std::to_string(a.id));
  wait_go();
  auto start = Clock::now();
  std::int64_t puts = 0;
  if (a.window <= 1) {
    while (!told_to_stop()) {
      try {
        q.put(item, true, kPutTimeout);
        ++puts;
      } catch (const zmanager::Full&) {
      }
    }
  } else {
    std::optional<zmanager::Batch> batch;
    if (a.batch) batch.emplace(q);
    std::vector<zmanager::Future<void>> ring(static_cast<std::size_t>(a.window));
    auto settle = [&](zmanager::Future<void>& f) {
      check(f.wait_for(kStepLimit), "a put did not complete within 15 s");
      try {
        f.get();
        ++puts;
      } catch (const zmanager::Full&) {
      }
    };
    for (std::size_t s = 0; !told_to_stop(); s = (s + 1) % ring.size()) {
      if (ring[s].valid()) settle(ring[s]);
      ring[s] = q.put_async(item, true, kPutTimeout);
    }
    for (auto& f : ring)
      if (f.valid()) settle(f);
  }
  report("result " + std::to_string(a.id) + " " + std::to_string(puts) + " " +
         std::to_string(seconds_between(start, Clock::now())));
}

/// `frame_producer`: fills the board's frame ring (examples/shared_memory) until told to stop,
/// then hands over the end mark.
void child_frame_producer(zmanager::SyncManager& m, const Args& a) {
  auto board = m.shared_dict(kBoard);
  auto free = board["free"].as<frames::SlotQueue>();
  auto filled = board["filled"].as<frames::SlotQueue>();
  frames::FrameRing ring(board["segment"].as<std::string>(), frames::kFrameBytes);
  std::vector<std::byte> frame(frames::kFrameBytes, std::byte{'x'});
  board["picture_sum"] = static_cast<std::int64_t>(frames::picture_sum(frame));
  report("ready " + std::to_string(a.id));
  wait_go();
  frames::FrameProducer producer(ring, free, filled);
  std::int64_t n = 0;
  while (!told_to_stop()) producer.send(frame, n++);
  producer.finish();
  report("result " + std::to_string(a.id) + " " + std::to_string(n) + " 0");
}

/// `waiters`: --items get()s parked on the board's queue at once (pipelined on this one
/// connection), then waits for every one to be handed an item.
void child_waiters(zmanager::SyncManager& m, const Args& a) {
  auto q = m.shared_dict(kBoard)["q"].as<zmanager::QueueProxy<std::int64_t>>();
  report("ready " + std::to_string(a.id));
  wait_go();
  std::vector<zmanager::Future<std::int64_t>> gets;
  gets.reserve(static_cast<std::size_t>(a.items));
  for (std::int64_t k = 0; k < a.items; ++k) gets.push_back(q.get_async());  // no timeout
  report("parked " + std::to_string(a.id));
  // The benchmark measures for a few seconds before releasing them.
  auto deadline = Clock::now() + 2 * kStepLimit;
  std::int64_t sum = 0;
  for (auto& f : gets) {
    check(f.wait_for(deadline - Clock::now()), "a parked get() was not released in time");
    sum += f.get();
  }
  report("result " + std::to_string(a.id) + " " + std::to_string(a.items) + " " +
         std::to_string(sum));
}

/// How the benchmark's clients connect: `authkey` unset takes ZMANAGER_AUTHKEY.
zmanager::ManagerOptions manager_options(std::string address, std::optional<std::string> authkey,
                                         const Args& a) {
  zmanager::ManagerOptions options{.address = std::move(address), .authkey = std::move(authkey)};
  if (a.spin_us >= 0) options.spin_before_sleep = std::chrono::microseconds(a.spin_us);
  return options;
}

int child_main(const Args& a) {
  // Exec reset the alarm's handler: this ends the process if every other bound failed.
  ::alarm(kWatchdogSeconds + 3);
  try {
    zmanager::SyncManager m(manager_options(a.address, std::nullopt, a));  // ZMANAGER_AUTHKEY
    m.connect();
    if (a.child == "calls")
      child_calls(m, a);
    else if (a.child == "producer")
      child_producer(m, a);
    else if (a.child == "waiters")
      child_waiters(m, a);
    else if (a.child == "frame_producer")
      child_frame_producer(m, a);
    else
      throw std::invalid_argument("unknown child role " + a.child);
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "bench_zmanager client " << a.id << " (" << a.child << "): " << e.what() << '\n';
    return 1;
  }
}

// ---------------------------------------------------------------------------------------------
// Scenarios (this process, connected to the server)

struct Context {
  const Args& args;
  zmanager::SyncManager& m;
  const ServerProcess& server;
  const std::string& authkey;
};

std::int64_t or_default(std::int64_t given, std::int64_t fallback) {
  return given > 0 ? given : fallback;
}

Json sync_add(Context& c) {
  auto maths = c.m.create<Maths>("Maths");
  std::int64_t k = 0;
  auto r = time_each(c.args.seconds, [&] {
    check_sum(k, maths.add(k, 1));
    ++k;
  });
  return one_at_a_time(r, "ops/s");
}

Json pipelined_add(Context& c) {
  auto window = or_default(c.args.window, 64);
  auto maths = c.m.create<Maths>("Maths");
  auto async = maths.async();
  std::optional<zmanager::Batch> batch;
  if (c.args.batch) batch.emplace(maths);
  auto r = run_window(
      window, c.args.seconds, [&](std::int64_t k) { return async.add(k, 1); },
      [](std::int64_t k, zmanager::Future<std::int64_t>& f) { check_sum(k, f.get()); });
  Json j;
  j.num("value", static_cast<double>(r.ops) / r.seconds)
      .str("unit", "ops/s")
      .integer("n", r.ops)
      .integer("window", window);
  return j;
}

Json dict_set(Context& c) {
  auto d = c.m.dict<std::int64_t, std::int64_t>();
  std::int64_t k = 0;
  auto r = time_each(c.args.seconds, [&] {
    d[k % 1000] = k;
    ++k;
  });
  check(d.size() == 1000, "the dict does not have 1000 keys after the sets");
  return one_at_a_time(r, "ops/s");
}

Json dict_get(Context& c) {
  std::vector<std::pair<std::int64_t, std::int64_t>> initial;
  for (std::int64_t k = 0; k < 1000; ++k) initial.emplace_back(k, k * 7);
  auto d = c.m.dict<std::int64_t, std::int64_t>(initial);
  std::int64_t k = 0;
  auto r = time_each(c.args.seconds, [&] {
    std::int64_t v = d[k % 1000];
    check(v == (k % 1000) * 7, "d[" + std::to_string(k % 1000) + "] = " + std::to_string(v));
    ++k;
  });
  return one_at_a_time(r, "ops/s");
}

Json lock_pair(Context& c) {
  auto lock = c.m.Lock();
  auto r = time_each(c.args.seconds, [&] {
    check(lock.acquire(), "acquire() of a free lock returned false");
    lock.release();
  });
  return one_at_a_time(r, "ops/s");
}

/// --clients processes, each with its own Maths object, started together; the aggregate is the
/// sum of each one's rate over its own measured seconds (they overlap: one start signal).
Json clients_add(Context& c, std::int64_t window) {
  auto n = or_default(c.args.clients, 8);
  ClientProcesses clients(c.server.address, c.authkey, c.args.spin_us);
  for (std::int64_t i = 0; i < n; ++i)
    clients.spawn("calls", {"--seconds", std::to_string(c.args.seconds), "--window",
                            std::to_string(window), "--batch", c.args.batch ? "on" : "off"});
  clients.close_spawn_ends();
  auto count = static_cast<std::size_t>(n);
  clients.expect("ready", count, Clock::now() + kStepLimit);
  clients.go();
  auto results =
      clients.expect("result", count, Clock::now() + kStepLimit + to_clock(c.args.seconds));
  clients.wait_exit(Clock::now() + kStepLimit);
  double rate = 0;
  std::int64_t ops = 0;
  for (auto& r : results) {
    check(r.size() == 4, "a malformed result line from a client process");
    std::int64_t o = std::stoll(r[2]);
    double s = std::stod(r[3]);
    check(o > 0 && s > 0, "a client process measured nothing");
    ops += o;
    rate += static_cast<double>(o) / s;
  }
  Json j;
  j.num("value", rate).str("unit", "ops/s").integer("n", ops).integer("clients", n);
  if (window > 1) j.integer("window", window);
  return j;
}

/// A producer process puts --bytes items on a shared queue while this process gets them: the
/// rate of gets during the measured seconds. --window W > 1 pipelines both ends (W puts and W
/// gets in flight); the default is one at a time, as Python's proxies do. `maxsize` is the
/// Python baseline's: unbounded for small items, 16 for 1 MiB ones, so that a producer faster
/// than the consumer cannot fill the server's memory.
Json queue_transfer(Context& c, std::int64_t bytes, std::int64_t maxsize, bool mib) {
  auto window = or_default(c.args.window, 1);
  auto q = c.m.Queue<zmanager::Bytes>(maxsize);
  c.m.shared_dict(kBoard)["q"] = q;
  ClientProcesses producer(c.server.address, c.authkey, c.args.spin_us);
  producer.spawn("producer", {"--bytes", std::to_string(bytes), "--window", std::to_string(window),
                              "--batch", c.args.batch ? "on" : "off"});
  producer.close_spawn_ends();
  producer.expect("ready", 1, Clock::now() + kStepLimit);
  producer.go();
  auto size = static_cast<std::size_t>(bytes);
  auto check_item = [&](const zmanager::Bytes& b) {
    check(b.size() == size, "an item of " + std::to_string(b.size()) + " bytes came out");
  };
  Measured r;
  if (window <= 1) {
    r = time_each(c.args.seconds, [&] { check_item(q.get(true, kStepLimit)); });
  } else {
    // The producer keeps running until the drain of these gets is over.
    std::optional<zmanager::Batch> batch;
    if (c.args.batch) batch.emplace(q);
    r = run_window(
        window, c.args.seconds, [&](std::int64_t) { return q.get_async(true, kStepLimit); },
        [&](std::int64_t, zmanager::Future<zmanager::Bytes>& f) { check_item(f.get()); });
  }
  producer.stop();
  producer.expect("result", 1, Clock::now() + kStepLimit);
  producer.wait_exit(Clock::now() + kStepLimit);
  double items_per_s = static_cast<double>(r.ops) / r.seconds;
  Json j;
  if (mib)
    j.num("value", items_per_s * static_cast<double>(bytes) / (1 << 20))
        .str("unit", "MiB/s")
        .num("items_per_s", items_per_s);
  else
    j.num("value", items_per_s).str("unit", "ops/s");
  j.integer("n", r.ops).integer("window", window).integer("maxsize", maxsize);
  return j;
}

/// The times of `n` puts, each with the get of its item, by this client on a queue of its own:
/// the cost of a round trip to a queue while the other queue holds its parked waiters.
std::vector<double> put_get_latencies_us(const zmanager::QueueProxy<std::int64_t>& probe, int n) {
  std::vector<double> micros;
  for (int i = -n / 4; i < n; ++i) {  // the first quarter warms up
    auto t = Clock::now();
    probe.put(i);
    std::int64_t got = probe.get(true, kStepLimit);
    auto took = std::chrono::duration<double, std::micro>(Clock::now() - t).count();
    check(got == i, "the probe queue returned another item");
    if (i >= 0) micros.push_back(took);
  }
  return micros;
}

/// --items (1000) get()s parked on one queue by --clients (4) processes, each pipelining its
/// share on one connection: the server's RSS growth per waiter, and a put→get round trip on
/// another queue without and with them parked. Then they are all released and must each get
/// one item.
Json parked_waiters(Context& c) {
  auto waiters = or_default(c.args.items, 1000);
  auto processes = std::min(or_default(c.args.clients, 4), waiters);
  auto q = c.m.Queue<std::int64_t>();
  auto probe = c.m.Queue<std::int64_t>();
  c.m.shared_dict(kBoard)["q"] = q;
  ClientProcesses clients(c.server.address, c.authkey, c.args.spin_us);
  for (std::int64_t i = 0; i < processes; ++i) {
    auto share = waiters / processes + (i < waiters % processes ? 1 : 0);
    clients.spawn("waiters", {"--items", std::to_string(share)});
  }
  clients.close_spawn_ends();
  auto count = static_cast<std::size_t>(processes);
  clients.expect("ready", count, Clock::now() + kStepLimit);
  // Connected and idle: the baseline holds the sessions, not yet the waiters. It is measured
  // again once they are gone, and the two taken together, so that the machine's drift during
  // the run does not bias the ratio one way (as bench/python_bench.py does).
  auto without = put_get_latencies_us(probe, 200);
  std::int64_t before = rss_kib(c.server.child.pid());
  clients.go();
  clients.expect("parked", count, Clock::now() + kStepLimit);
  // Sent is not parked: the server says when all have arrived.
  auto deadline = Clock::now() + kStepLimit;
  for (std::size_t parked = 0;
       (parked = q.waiting_getters()) < static_cast<std::size_t>(waiters);) {
    check(Clock::now() < deadline, "only " + std::to_string(parked) + " of " +
                                       std::to_string(waiters) + " gets were parked in time");
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  std::int64_t after = rss_kib(c.server.child.pid());
  const double with_us = percentile(put_get_latencies_us(probe, 200), 0.5);
  for (std::int64_t k = 0; k < waiters; ++k) q.put(k);
  auto results = clients.expect("result", count, Clock::now() + kStepLimit);
  clients.wait_exit(Clock::now() + kStepLimit);
  std::int64_t got = 0, sum = 0;
  for (auto& r : results) {
    check(r.size() == 4, "a malformed result line from a client process");
    got += std::stoll(r[2]);
    sum += std::stoll(r[3]);
  }
  check(got == waiters && sum == waiters * (waiters - 1) / 2,
        "the released waiters did not get each item exactly once");
  check(q.qsize() == 0 && q.waiting_getters() == 0, "the queue is not empty after the release");
  const auto again = put_get_latencies_us(probe, 200);
  without.insert(without.end(), again.begin(), again.end());
  const double without_us = percentile(without, 0.5);
  Json j;
  j.num("value", static_cast<double>(after - before) / static_cast<double>(waiters))
      .str("unit", "KiB/waiter")
      .num("latency_without_us", without_us)
      .num("latency_with_us", with_us)
      .num("latency_ratio", with_us / without_us)
      .integer("n", waiters)
      .integer("processes", processes)
      .integer("rss_before_kib", before)
      .integer("rss_after_kib", after);
  return j;
}

/// The server's RSS growth for a dict filled with --items (1,000,000) int→int entries, sent by
/// update() in chunks of 10,000.
Json dict_1M_rss(Context& c) {
  auto entries = or_default(c.args.items, 1'000'000);
  constexpr std::int64_t kChunk = 10'000;
  auto d = c.m.dict<std::int64_t, std::int64_t>();
  std::int64_t before = rss_kib(c.server.child.pid());
  auto start = Clock::now();
  std::vector<std::pair<std::int64_t, std::int64_t>> chunk;
  chunk.reserve(kChunk);
  for (std::int64_t k = 0; k < entries;) {
    chunk.clear();
    for (std::int64_t end = std::min(entries, k + kChunk); k < end; ++k) chunk.emplace_back(k, k);
    d.update(chunk);
  }
  double fill_s = seconds_between(start, Clock::now());
  check(d.size() == static_cast<std::size_t>(entries), "the dict does not hold every entry");
  std::int64_t after = rss_kib(c.server.child.pid());
  Json j;
  j.num("value", static_cast<double>(after - before) / 1024)
      .str("unit", "MiB")
      .integer("n", entries)
      .num("bytes_per_entry",
           static_cast<double>(after - before) * 1024 / static_cast<double>(entries))
      .num("fill_s", fill_s)
      .integer("rss_before_kib", before)
      .integer("rss_after_kib", after);
  return j;
}

/// 4K frames from a producer process to this one through shared memory, as
/// examples/shared_memory does it: a ring of 2 frame slots in one segment, slot numbers handed
/// over through two managed queues, each frame copied into its slot and read there (every word
/// summed and checked) by this process. The value is
/// frames/s × frame size; its floor is one thread's memcpy (bench_memcpy_floor).
Json frames_4k(Context& c) {
  constexpr std::int64_t kSlots = 2;  // double buffering: the smallest working set
  frames::FrameRing ring(frames::kFrameBytes, kSlots);
  struct Unlink {
    frames::FrameRing& ring;
    ~Unlink() { ring.unlink(); }
  } unlink_at_exit{ring};
  auto free = c.m.Queue<std::int64_t>();
  auto filled = c.m.Queue<std::int64_t>();
  for (std::int64_t s = 0; s < kSlots; ++s) free.put(s);
  auto board = c.m.shared_dict(kBoard);
  board["free"] = free;
  board["filled"] = filled;
  board["segment"] = ring.name();
  ClientProcesses producer(c.server.address, c.authkey, c.args.spin_us);
  producer.spawn("frame_producer", {});
  producer.close_spawn_ends();
  producer.expect("ready", 1, Clock::now() + kStepLimit);
  producer.go();
  auto picture_sum = static_cast<std::uint64_t>(board["picture_sum"].as<std::int64_t>());
  frames::FrameConsumer consumer(ring, free, filled);
  std::int64_t next = 0;
  auto take = [&] {
    auto number = consumer.receive(picture_sum);
    check(number == next, "frame " + std::to_string(next) + " did not come next");
    ++next;
  };
  auto r = time_each(c.args.seconds, take);
  producer.stop();
  while (consumer.receive(picture_sum)) {  // what it made before it stopped
  }
  producer.expect("result", 1, Clock::now() + kStepLimit);
  producer.wait_exit(Clock::now() + kStepLimit);
  double frames_per_s = static_cast<double>(r.ops) / r.seconds;
  Json j;
  j.num("value", frames_per_s * static_cast<double>(frames::kFrameBytes) / (1 << 20))
      .str("unit", "MiB/s")
      .num("frames_per_s", frames_per_s)
      .integer("n", r.ops)
      .integer("frame_bytes", static_cast<std::int64_t>(frames::kFrameBytes))
      .integer("slots", kSlots);
  return j;
}

Json run_scenario(Context& c) {
  const std::string& s = c.args.scenario;
  if (s == "sync_add") return sync_add(c);
  if (s == "pipelined_add") return pipelined_add(c);
  if (s == "dict_set") return dict_set(c);
  if (s == "dict_get") return dict_get(c);
  if (s == "lock_pair") return lock_pair(c);
  if (s == "clients_sync_add") return clients_add(c, 1);
  if (s == "clients_window_add") return clients_add(c, or_default(c.args.window, 16));
  if (s == "queue_64B") return queue_transfer(c, 64, 0, false);
  if (s == "queue_1MiB") return queue_transfer(c, 1 << 20, 16, true);
  if (s == "parked_waiters") return parked_waiters(c);
  if (s == "dict_1M_rss") return dict_1M_rss(c);
  if (s == "frames_4k") return frames_4k(c);
  // The same frames as values through a managed queue (at most 4 queued, about 95 MiB).
  if (s == "frames_4k_queue")
    return queue_transfer(c, static_cast<std::int64_t>(frames::kFrameBytes), 4, true);
  throw std::logic_error("no implementation for scenario " + s);
}

std::string random_key() {
  unsigned char raw[16];
  check(::getrandom(raw, sizeof raw, 0) == static_cast<ssize_t>(sizeof raw), "getrandom failed");
  std::string hex;
  for (unsigned char b : raw) {
    static constexpr char digits[] = "0123456789abcdef";
    hex += digits[b >> 4];
    hex += digits[b & 15];
  }
  return hex;
}

int bench_main(const Args& args) {
  check(std::find(kScenarios.begin(), kScenarios.end(), args.scenario) != kScenarios.end(),
        "unknown scenario " + args.scenario);
  // A client process that dies must not kill us through a write to its pipe.
  ::signal(SIGPIPE, SIG_IGN);
  struct sigaction watchdog = {};
  watchdog.sa_handler = on_watchdog;
  ::sigaction(SIGALRM, &watchdog, nullptr);
  ::alarm(kWatchdogSeconds);

  std::string authkey = random_key();
  // First, while this process has no thread.
  ServerProcess server = start_server(authkey, args.transport, args.segments);
  Json result;
  {
    zmanager::SyncManager m(manager_options(server.address, authkey, args));
    m.connect();
    Context c{args, m, server, authkey};
    result = run_scenario(c);
  }  // disconnected before the server stops
  Json line;
  line.str("impl", args.transport == "unix" ? kLocalImpl : kImpl)
      .str("scenario", args.scenario)
      .append(result);
  std::cout << line.line() << std::endl;
  // After the line: a server that fails to stop cleanly (a crash, a sanitizer report at exit)
  // is reported and fails the run, but does not hide what was measured.
  stop_server(server);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  try {
    args = parse(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "bench_zmanager: " << e.what()
              << "\nusage: bench_zmanager --scenario NAME [--seconds S] [--window W]"
                 " [--clients N] [--items K] [--transport zmq|unix] [--spin US]"
                 " [--segments on|off]\n";
    return 2;
  }
  if (!args.child.empty()) return child_main(args);
  try {
    return bench_main(args);
  } catch (const std::exception& e) {
    std::cerr << "bench_zmanager " << args.scenario << ": " << e.what() << '\n';
    return 1;
  }
}
