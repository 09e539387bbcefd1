// What the two transport-floor programs (bench_zmq_floor, bench_unix_floor) share: the benchmark's
// command line, child processes with a watchdog, pipes between parent and children, and the
// measurement records. Each program includes it once.
#pragma once

#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <span>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

namespace floor_harness {

using Clock = std::chrono::steady_clock;
inline constexpr int kMaxChildren = 256;

struct Options {
  std::string scenario;
  double seconds = 1.0;
  int window = 0;  // 0: the scenario's default
  int clients = 8;
};

inline Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error("missing value after " + arg);
      return argv[++i];
    };
    // std::stod/stoi's own errors do not say which argument was wrong.
    auto number = [&](auto convert) {
      const std::string v = value();
      try {
        return convert(v);
      } catch (const std::logic_error&) {
        throw std::runtime_error("bad number after " + arg + ": " + v);
      }
    };
    auto to_double = [](const std::string& v) { return std::stod(v); };
    auto to_int = [](const std::string& v) { return std::stoi(v); };
    if (arg == "--scenario") {
      o.scenario = value();
    } else if (arg == "--seconds") {
      o.seconds = number(to_double);
    } else if (arg == "--window") {
      o.window = number(to_int);
    } else if (arg == "--clients") {
      o.clients = number(to_int);
    } else if (arg == "--items") {
      value();  // part of the shared command line; no scenario here has items
    } else {
      throw std::runtime_error("unknown argument " + arg);
    }
  }
  if (o.scenario.empty()) throw std::runtime_error("--scenario is required");
  if (!(o.seconds > 0 && o.seconds <= 30)) throw std::runtime_error("--seconds must be in (0, 30]");
  // The window's requests are written in one go before any reply is read: they must fit in the
  // socket buffers (about 200 KiB), or client and server would both block writing.
  if (o.window < 0 || o.window > 1000) throw std::runtime_error("--window must be in 1..1000");
  if (o.clients < 1 || o.clients > 128) throw std::runtime_error("--clients must be in 1..128");
  return o;
}

// The integer after argv[i], an option of one program's own (which parse() does not take): in
// [0, max], or an error naming the option.
inline long integer_after(int argc, char** argv, int i, long max) {
  char* end = nullptr;
  const long n = i + 1 < argc ? std::strtol(argv[i + 1], &end, 10) : -1;
  if (end == nullptr || *end != '\0' || n < 0 || n > max)
    throw std::runtime_error(std::string(argv[i]) + " must be an integer in [0, " +
                             std::to_string(max) + "]");
  return n;
}

inline Clock::duration to_duration(double seconds) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}
inline double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// ---- Child processes -------------------------------------------------------------------------
// Every child is forked from this single-threaded process (the ZeroMQ floor forks before it
// creates a context, whose I/O threads would not survive a fork). The bookkeeping is plain
// globals because the watchdog's signal handler reads it.

inline const char* g_program = "bench";             // for messages: set by main
inline volatile sig_atomic_t g_pids[kMaxChildren];  // 0 once reaped
inline volatile sig_atomic_t g_npids = 0;
inline int g_status[kMaxChildren];          // exit status, 128 + signal if killed
inline std::vector<int> g_parent_only_fds;  // ends the parent alone must hold: closed in children
inline unsigned g_budget_s = 60;
inline char g_socket_path[sizeof(sockaddr_un::sun_path)] = {};  // for the watchdog to remove too

// The run's last resort: whatever is stuck, the program still ends, children killed and reaped.
inline void on_watchdog(int) {
  static const char kMsg[] = ": watchdog expired, killing the children\n";
  if (write(STDERR_FILENO, g_program, std::strlen(g_program)) < 0 ||
      write(STDERR_FILENO, kMsg, sizeof kMsg - 1) < 0) {
  }
  if (g_socket_path[0] != '\0') unlink(g_socket_path);
  for (int i = 0; i < g_npids; ++i)
    if (g_pids[i] > 0) kill(g_pids[i], SIGKILL);
  for (int i = 0; i < g_npids; ++i)
    if (g_pids[i] > 0) waitpid(g_pids[i], nullptr, 0);
  _exit(3);
}

inline pid_t spawn(const std::function<int()>& body) {
  if (g_npids >= kMaxChildren) throw std::runtime_error("too many children");
  std::fflush(nullptr);  // or buffered output would be written twice
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) throw std::system_error(errno, std::generic_category(), "fork");
  if (pid == 0) {
    // The parent's children are not this child's to reap; its own alarm just kills it.
    g_npids = 0;
    signal(SIGALRM, SIG_DFL);
    alarm(g_budget_s);
    // Dies with the parent, whatever kills it; the getppid check closes the race with an early
    // death.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);
    for (int fd : g_parent_only_fds) close(fd);
    g_parent_only_fds.clear();
    int rc = 1;
    try {
      rc = body();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s (child %d): %s\n", g_program, static_cast<int>(getpid()), e.what());
    }
    _exit(rc);  // not exit(): the parent's atexit handlers and buffers are not the child's
  }
  g_status[g_npids] = -1;
  g_pids[g_npids] = pid;
  g_npids = g_npids + 1;
  return pid;
}

// Reaps the children that have exited; false if any child has failed.
inline bool children_ok() {
  bool ok = true;
  for (int i = 0; i < g_npids; ++i) {
    if (g_pids[i] > 0) {
      int st = 0;
      if (waitpid(g_pids[i], &st, WNOHANG) == g_pids[i]) {
        g_status[i] = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        g_pids[i] = 0;
      }
    }
    if (g_pids[i] == 0 && g_status[i] != 0) ok = false;
  }
  return ok;
}

// Waits up to grace_s for every child to exit, then kills the rest. True if all exited with 0.
inline bool reap_all(double grace_s) {
  const auto deadline = Clock::now() + to_duration(grace_s);
  for (;;) {
    children_ok();
    bool all = true;
    for (int i = 0; i < g_npids; ++i) all = all && g_pids[i] == 0;
    if (all || Clock::now() >= deadline) break;
    usleep(5000);
  }
  bool ok = true;
  for (int i = 0; i < g_npids; ++i) {
    if (g_pids[i] > 0) {
      kill(g_pids[i], SIGKILL);
      waitpid(g_pids[i], nullptr, 0);
      g_status[i] = 128 + SIGKILL;
      g_pids[i] = 0;
    }
    ok = ok && g_status[i] == 0;
  }
  return ok;
}

struct Pipe {
  int r = -1;
  int w = -1;
};

inline Pipe make_pipe() {
  int fds[2];
  if (pipe(fds) != 0) throw std::system_error(errno, std::generic_category(), "pipe");
  return {fds[0], fds[1]};
}

inline void close_fd(int& fd) {
  if (fd >= 0) close(fd);
  fd = -1;
}

// For pipes and sockets alike; a socket's SO_SNDTIMEO bounds each write.
inline void write_all(int fd, const void* data, std::size_t len) {
  const auto* p = static_cast<const char*>(data);
  while (len > 0) {
    const ssize_t n = write(fd, p, len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      throw std::runtime_error("write timed out");
    if (n <= 0) throw std::system_error(errno, std::generic_category(), "write");
    p += n;
    len -= static_cast<std::size_t>(n);
  }
}

// Reads len bytes from a pipe a child writes to (fewer at end of file), waiting until the
// deadline at most and giving up as soon as a child fails: its bytes would never come.
inline std::size_t read_from_children(int fd, void* data, std::size_t len,
                                      Clock::time_point deadline) {
  auto* p = static_cast<char*>(data);
  std::size_t got = 0;
  while (got < len) {
    if (!children_ok()) throw std::runtime_error("a child process failed");
    if (Clock::now() >= deadline) throw std::runtime_error("timed out waiting for the children");
    pollfd pfd{fd, POLLIN, 0};
    const int r = poll(&pfd, 1, 50);
    if (r < 0 && errno != EINTR) throw std::system_error(errno, std::generic_category(), "poll");
    if (r <= 0) continue;
    const ssize_t n = read(fd, p + got, len - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw std::system_error(errno, std::generic_category(), "read from pipe");
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  return got;
}

// True once the parent has closed its end of the pipe (or written to it): time to stop.
inline bool parent_says_stop(int fd) {
  pollfd pfd{fd, POLLIN, 0};
  return poll(&pfd, 1, 0) > 0;
}

// What every program's main starts with: its options, unless there is nothing to run. Then
// false, with the exit code: 2 for a usage error or a scenario the program does not know; 0 for
// one it has no equivalent for, after printing so in the shared JSON format.
inline bool options_to_run(int argc, char** argv, const char* impl,
                           std::span<const char* const> supported,
                           std::span<const char* const> unsupported, Options& o, int& exit_code) {
  try {
    o = parse(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", g_program, e.what());
    exit_code = 2;
    return false;
  }
  auto named = [&](std::span<const char* const> names) {
    return std::find(names.begin(), names.end(), o.scenario) != names.end();
  };
  if (named(unsupported)) {
    std::printf("{\"impl\": \"%s\", \"scenario\": \"%s\", \"unsupported\": true}\n", impl,
                o.scenario.c_str());
    exit_code = 0;
    return false;
  }
  if (!named(supported)) {
    std::fprintf(stderr, "%s: unknown scenario %s\n", g_program, o.scenario.c_str());
    exit_code = 2;
    return false;
  }
  return true;
}

// The run's last resort (on_watchdog) after `seconds`; and a dead peer is an error to report,
// not a reason to die silently.
inline void arm_watchdog(unsigned seconds) {
  signal(SIGPIPE, SIG_IGN);
  g_budget_s = seconds;
  signal(SIGALRM, on_watchdog);
  alarm(g_budget_s);
}

// ---- Measurements ----------------------------------------------------------------------------

struct Measured {
  std::int64_t n = 0;
  Clock::time_point start;
  Clock::time_point end;
  std::vector<double> latency_us;  // per operation, one-at-a-time loops only
};

inline double warmup_seconds(double seconds) {
  return std::clamp(seconds * 0.2, 0.05, 0.3);
}

// What a client process reports: small enough to reach the parent in one atomic pipe write.
struct ClientResult {
  std::int64_t n;
  std::int64_t start_ns;  // steady_clock is CLOCK_MONOTONIC: comparable across processes
  std::int64_t end_ns;
};

inline std::int64_t ns(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

inline double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  const auto k = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

// o.clients client processes, each with its own connection, measured together: each warms up,
// calls the ready function it is given (which says so and waits for one go signal, the parent
// closing a pipe), and returns its measured run, so that their measured spans overlap.
// all_ready runs in the parent once every client is ready, before the go. Returns the aggregate:
// all operations over the span from the first start to the last end.
struct Aggregate {
  std::int64_t n = 0;
  double rate = 0;
};

inline Aggregate run_client_processes(
    const Options& o, const std::function<Measured(int, const std::function<void()>&)>& client,
    const std::function<void()>& all_ready = [] {}) {
  Pipe ready = make_pipe();
  Pipe go = make_pipe();
  Pipe results = make_pipe();
  g_parent_only_fds.push_back(go.w);
  for (int i = 0; i < o.clients; ++i) {
    spawn([&, i] {
      close(ready.r);
      close(results.r);
      const Measured m = client(i, [&] {
        write_all(ready.w, "r", 1);
        pollfd pfd{go.r, POLLIN, 0};
        if (poll(&pfd, 1, 20000) <= 0) throw std::runtime_error("no go signal");
      });
      const ClientResult r{m.n, ns(m.start), ns(m.end)};
      write_all(results.w, &r, sizeof r);
      return 0;
    });
  }
  close(ready.w);
  close(go.r);
  close(results.w);
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  std::vector<char> ready_bytes(static_cast<std::size_t>(o.clients));
  if (read_from_children(ready.r, ready_bytes.data(), ready_bytes.size(), deadline) !=
      ready_bytes.size())
    throw std::runtime_error("a client did not get ready");
  all_ready();
  close_fd(go.w);  // every client sees end of file at once: go
  std::vector<ClientResult> rs(static_cast<std::size_t>(o.clients));
  const std::size_t bytes = rs.size() * sizeof(ClientResult);
  if (read_from_children(results.r, rs.data(), bytes, deadline + to_duration(o.seconds)) != bytes)
    throw std::runtime_error("a client did not report");
  close(ready.r);
  close(results.r);
  Aggregate a;
  std::int64_t first = rs[0].start_ns;
  std::int64_t last = rs[0].end_ns;
  for (const auto& r : rs) {
    a.n += r.n;
    first = std::min(first, r.start_ns);
    last = std::max(last, r.end_ns);
  }
  a.rate = static_cast<double>(a.n) / (static_cast<double>(last - first) * 1e-9);
  return a;
}

// The JSON line of a one-client run: its rate, and with `window` calls in flight that window,
// else the p50 and p99 latencies of its operations.
inline void print_one_client(const char* impl, const Options& o, Measured m, int window) {
  const double rate = static_cast<double>(m.n) / seconds_between(m.start, m.end);
  if (window > 0) {
    std::printf(
        "{\"impl\": \"%s\", \"scenario\": \"%s\", \"value\": %.1f, \"unit\": \"ops/s\", "
        "\"n\": %lld, \"window\": %d}\n",
        impl, o.scenario.c_str(), rate, static_cast<long long>(m.n), window);
  } else {
    const double p50 = percentile(m.latency_us, 0.50);
    const double p99 = percentile(m.latency_us, 0.99);
    std::printf(
        "{\"impl\": \"%s\", \"scenario\": \"%s\", \"value\": %.1f, \"unit\": \"ops/s\", "
        "\"p50_us\": %.1f, \"p99_us\": %.1f, \"n\": %lld}\n",
        impl, o.scenario.c_str(), rate, p50, p99, static_cast<long long>(m.n));
  }
}

// The JSON line of a run_client_processes() scenario; window: 0 when one call at a time.
inline void print_aggregate(const char* impl, const Options& o, const Aggregate& a, int window) {
  std::printf(
      "{\"impl\": \"%s\", \"scenario\": \"%s\", \"value\": %.1f, \"unit\": \"ops/s\", \"n\": %lld, "
      "\"clients\": %d",
      impl, o.scenario.c_str(), a.rate, static_cast<long long>(a.n), o.clients);
  if (window > 0) std::printf(", \"window\": %d", window);
  std::printf("}\n");
}

}  // namespace floor_harness
