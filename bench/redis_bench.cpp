// The Redis baseline of the benchmark (bench/README.md): the scenarios that have a Redis
// equivalent, against a Redis server (Debian's redis-tools) that this program starts on 127.0.0.1
// with persistence off, driven through hiredis over TCP as zmanager's clients drive its server.
//   bench_redis --scenario NAME [--seconds S] [--window W] [--clients N]
// prints one JSON line, in the format every benchmark program shares. The equivalents:
//   sync_add, pipelined_add, clients_*_add   INCRBY on a counter of the client's own
//   dict_set, dict_get                       HSET, HGET on a hash of 1,000 fields
//   lock_pair                                SET lock NX PX, then DEL: Redis's simple lock
//   queue_64B                                RPUSH by a producer process, BLPOP here
//   queue_1MiB                               the same, bounded at 16 items by a list of tokens
//   dict_1M_rss                              redis-server's RSS growth for a 1,000,000-field hash
#include <arpa/inet.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "floor_harness.hpp"
#include "proc_status.hpp"

namespace {

using namespace floor_harness;

constexpr const char* kImpl = "redis";
// Debian's redis-tools holds the Redis binary under this name, and it serves when started under
// the name redis-server (the redis-server package is only that symlink, and a system service
// that this benchmark does not want installed).
constexpr const char* kRedisBinary = "/usr/bin/redis-check-rdb";
constexpr int kIoTimeoutMs = 5000;       // a reply later than this means something is broken
constexpr std::size_t kQueueBound = 16;  // the Python baseline's maxsize for 1 MiB items
constexpr std::int64_t kDictEntries = 1'000'000;
constexpr int kDictChunk = 1'000;  // fields per HSET while filling the big hash

// The scenarios this program runs, and those the spec names that Redis has no equivalent for
// (they print `unsupported`). Any other name is a typo and an error.
constexpr std::array<const char*, 10> kSupported = {
    "sync_add",         "pipelined_add",      "dict_set",  "dict_get",   "lock_pair",
    "clients_sync_add", "clients_window_add", "queue_64B", "queue_1MiB", "dict_1M_rss"};
constexpr std::array<const char*, 3> kUnsupported = {"parked_waiters", "frames_4k",
                                                     "frames_4k_queue"};

// ---- hiredis, with errors as exceptions -------------------------------------------------------

struct ReplyFree {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyFree>;

struct ContextFree {
  void operator()(redisContext* c) const { redisFree(c); }
};

class Connection {
 public:
  explicit Connection(int port, int timeout_ms = kIoTimeoutMs) {
    const timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    ctx_.reset(redisConnectWithTimeout("127.0.0.1", port, tv));
    if (!ctx_ || ctx_->err)
      throw std::runtime_error(std::string("cannot connect to redis: ") +
                               (ctx_ ? ctx_->errstr : "out of memory"));
    if (redisSetTimeout(ctx_.get(), tv) != REDIS_OK)
      throw std::runtime_error("cannot set the redis timeout");
  }

  // One command, its reply awaited. Arguments are binary-safe.
  Reply command(std::initializer_list<std::string_view> args) {
    append(args);
    return reply();
  }
  void append(std::initializer_list<std::string_view> args) {
    std::vector<const char*> argv;
    std::vector<std::size_t> lens;
    for (auto a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    append_argv(argv, lens);
  }
  void append_argv(const std::vector<const char*>& argv, const std::vector<std::size_t>& lens) {
    // hiredis 0.14 takes a non-const array that it does not change.
    if (redisAppendCommandArgv(ctx_.get(), static_cast<int>(argv.size()),
                               const_cast<const char**>(argv.data()), lens.data()) != REDIS_OK)
      fail("append");
  }
  // The next reply in order; an error reply is an exception.
  Reply reply() {
    void* raw = nullptr;
    if (redisGetReply(ctx_.get(), &raw) != REDIS_OK || raw == nullptr) fail("reply");
    Reply r(static_cast<redisReply*>(raw));
    if (r->type == REDIS_REPLY_ERROR) throw std::runtime_error("redis: " + std::string(r->str));
    return r;
  }

 private:
  [[noreturn]] void fail(const char* what) {
    throw std::runtime_error(std::string("redis ") + what + ": " + ctx_->errstr);
  }
  std::unique_ptr<redisContext, ContextFree> ctx_;
};

std::int64_t integer(const Reply& r) {
  if (r->type != REDIS_REPLY_INTEGER) throw std::runtime_error("redis: not an integer reply");
  return r->integer;
}

// ---- The server ---------------------------------------------------------------------------------

// A port free on 127.0.0.1 now. Between this and redis-server's bind another program could take
// it; then redis-server fails and so does the run, loudly.
int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    close(fd);
    throw std::system_error(errno, std::generic_category(), "bind");
  }
  close(fd);
  return ntohs(addr.sin_port);
}

struct Server {
  pid_t pid = -1;
  int port = 0;
};

// An in-memory redis-server, as zmanager's and Python's servers are: no snapshots, no append-only
// file, nothing written to disk. Returns once it answers PING.
Server start_server() {
  Server s;
  s.port = free_port();
  const std::string port = std::to_string(s.port);
  s.pid = spawn([&] {
    const char* argv[] = {
        "redis-server", "--bind", "127.0.0.1",        "--port", port.c_str(), "--save",  "",
        "--appendonly", "no",     "--protected-mode", "no",     "--loglevel", "warning", "--dir",
        "/tmp",         nullptr};
    // Its log would mix with this program's JSON line: a failure shows as its exit instead.
    const int null = open("/dev/null", O_WRONLY);
    if (null >= 0) dup2(null, STDOUT_FILENO);
    execv(kRedisBinary, const_cast<char* const*>(argv));
    std::fprintf(stderr, "bench_redis: cannot run %s: %s\n", kRedisBinary, std::strerror(errno));
    return 127;
  });
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  for (;;) {
    if (!children_ok()) throw std::runtime_error("redis-server exited");
    try {
      Connection c(s.port, 200);
      Reply r = c.command({"PING"});
      if (r->type == REDIS_REPLY_STATUS) return s;
    } catch (const std::runtime_error&) {
      if (Clock::now() >= deadline) throw std::runtime_error("redis-server did not start");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // it has no readiness signal
  }
}

// ---- Loops --------------------------------------------------------------------------------------

// One operation at a time until `seconds` have passed.
Measured run_each(double seconds, bool record, const std::function<void()>& op) {
  Measured m;
  if (record) m.latency_us.reserve(1 << 16);
  m.start = Clock::now();
  const auto stop = m.start + to_duration(seconds);
  Clock::time_point done;
  do {
    const auto begin = Clock::now();
    op();
    done = Clock::now();
    if (record)
      m.latency_us.push_back(std::chrono::duration<double, std::micro>(done - begin).count());
    ++m.n;
  } while (done < stop);
  m.end = done;
  return m;
}

// INCRBY on the client's own counter: each reply must be the next value.
class Adder {
 public:
  Adder(Connection& c, std::string key) : c_(c), key_(std::move(key)) {
    c_.command({"SET", key_, "0"});
  }
  void send() { c_.append({"INCRBY", key_, "1"}); }
  void receive() {
    if (integer(c_.reply()) != ++expected_) throw std::runtime_error("INCRBY out of order");
  }

  Measured sync(double seconds, bool record) {
    return run_each(seconds, record, [&] {
      send();
      receive();
    });
  }

  // `window` commands in flight; those still in flight when time is up are drained, not counted.
  Measured window(double seconds, int window) {
    Measured m;
    m.start = Clock::now();
    const auto stop = m.start + to_duration(seconds);
    int in_flight = 0;
    for (; in_flight < window; ++in_flight) send();
    for (;;) {
      receive();
      --in_flight;
      ++m.n;
      m.end = Clock::now();
      if (m.end >= stop) break;
      send();
      ++in_flight;
    }
    for (; in_flight > 0; --in_flight) receive();
    return m;
  }

 private:
  Connection& c_;
  std::string key_;
  std::int64_t expected_ = 0;
};

// ---- Scenarios ----------------------------------------------------------------------------------

void one_client(const Options& o, const Server& s) {
  Connection c(s.port);
  const std::string& sc = o.scenario;
  if (sc == "sync_add" || sc == "pipelined_add") {
    Adder adder(c, "add");
    const bool windowed = sc == "pipelined_add";
    auto run = [&](double seconds, bool record) {
      return windowed ? adder.window(seconds, o.window) : adder.sync(seconds, record);
    };
    run(warmup_seconds(o.seconds), false);
    print_one_client(kImpl, o, run(o.seconds, !windowed), windowed ? o.window : 0);
    return;
  }
  std::function<void()> op;
  std::int64_t k = 0;
  if (sc == "dict_set") {
    op = [&] {
      const std::string key = std::to_string(k % 1000);
      const std::string value = std::to_string(k++);
      c.command({"HSET", "d", key, value});
    };
  } else if (sc == "dict_get") {
    for (int f = 0; f < 1000; ++f)
      c.append({"HSET", "d", std::to_string(f), std::to_string(f * 7)});
    for (int f = 0; f < 1000; ++f) c.reply();
    op = [&] {
      const std::int64_t f = k++ % 1000;
      Reply r = c.command({"HGET", "d", std::to_string(f)});
      if (r->type != REDIS_REPLY_STRING || std::stoll(std::string(r->str, r->len)) != f * 7)
        throw std::runtime_error("HGET returned another value");
    };
  } else if (sc == "lock_pair") {
    op = [&] {
      Reply taken = c.command({"SET", "lock", "me", "NX", "PX", "30000"});
      if (taken->type != REDIS_REPLY_STATUS)
        throw std::runtime_error("the free lock was not taken");
      if (integer(c.command({"DEL", "lock"})) != 1)
        throw std::runtime_error("the lock was not held");
    };
  }
  run_each(warmup_seconds(o.seconds), false, op);
  print_one_client(kImpl, o, run_each(o.seconds, true, op), 0);
}

// N client processes, each with its own connection and counter, measured together.
void many_clients(const Options& o, const Server& s, bool windowed) {
  const Aggregate a = run_client_processes(o, [&](int i, const std::function<void()>& ready) {
    Connection c(s.port);
    Adder adder(c, "add:" + std::to_string(i));
    auto run = [&](double seconds) {
      return windowed ? adder.window(seconds, o.window) : adder.sync(seconds, false);
    };
    run(warmup_seconds(o.seconds));
    ready();
    return run(o.seconds);
  });
  print_aggregate(kImpl, o, a, windowed ? o.window : 0);
}

// A producer process pushes items while this process pops them, one at a time each, as the
// Python baseline's proxies do. A bounded queue (1 MiB items) is a list of tokens beside the
// list of items: the producer takes a token before each push, the consumer gives one back after
// each pop, so at most `bound` items are queued.
void queue_transfer(const Options& o, const Server& s, std::size_t item_bytes, std::size_t bound) {
  {
    Connection setup(s.port);
    for (std::size_t t = 0; t < bound; ++t) setup.command({"RPUSH", "slots", "t"});
  }
  Pipe producer_stop = make_pipe();
  g_parent_only_fds.push_back(producer_stop.w);
  spawn([&] {
    Connection c(s.port);
    const std::string item(item_bytes, 'x');
    while (!parent_says_stop(producer_stop.r)) {
      // Short waits for a token: the consumer stops popping before it says stop.
      if (bound && c.command({"BLPOP", "slots", "0.05"})->type == REDIS_REPLY_NIL) continue;
      c.command({"RPUSH", "q", item});
    }
    return 0;
  });
  close(producer_stop.r);
  Connection c(s.port);
  auto pop = [&] {
    Reply r = c.command({"BLPOP", "q", "5"});
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[1]->len != item_bytes)
      throw std::runtime_error("no whole item within 5 s");
    if (bound) c.command({"RPUSH", "slots", "t"});
  };
  run_each(warmup_seconds(o.seconds), false, pop);
  const Measured m = run_each(o.seconds, false, pop);
  close_fd(producer_stop.w);
  const double items_per_s = static_cast<double>(m.n) / seconds_between(m.start, m.end);
  const bool mib = item_bytes >= (1 << 20);
  std::printf("{\"impl\": \"%s\", \"scenario\": \"%s\", \"value\": %.1f, \"unit\": \"%s\", ", kImpl,
              o.scenario.c_str(),
              mib ? items_per_s * static_cast<double>(item_bytes) / (1 << 20) : items_per_s,
              mib ? "MiB/s" : "ops/s");
  std::printf("\"items_per_s\": %.1f, \"n\": %lld, \"maxsize\": %zu}\n", items_per_s,
              static_cast<long long>(m.n), bound);
}

// redis-server's RSS growth for a hash of 1,000,000 int→int fields, sent 1,000 to a command.
void dict_1M_rss(const Options& o, const Server& s) {
  Connection c(s.port);
  const std::int64_t before = rss_kib(s.pid);
  const auto start = Clock::now();
  std::vector<std::string> words;
  std::vector<const char*> argv;
  std::vector<std::size_t> lens;
  for (std::int64_t k = 0; k < kDictEntries;) {
    words = {"HSET", "d"};
    for (std::int64_t end = std::min(kDictEntries, k + kDictChunk); k < end; ++k) {
      words.push_back(std::to_string(k));
      words.push_back(std::to_string(k));
    }
    argv.clear();
    lens.clear();
    for (const auto& w : words) {
      argv.push_back(w.data());
      lens.push_back(w.size());
    }
    c.append_argv(argv, lens);
    c.reply();
  }
  const double fill_s = seconds_between(start, Clock::now());
  if (integer(c.command({"HLEN", "d"})) != kDictEntries)
    throw std::runtime_error("the hash does not hold every entry");
  const std::int64_t after = rss_kib(s.pid);
  std::printf(
      "{\"impl\": \"%s\", \"scenario\": \"%s\", \"value\": %.1f, \"unit\": \"MiB\", \"n\": %lld, "
      "\"bytes_per_entry\": %.1f, \"fill_s\": %.2f, \"rss_before_kib\": %lld, "
      "\"rss_after_kib\": %lld}\n",
      kImpl, o.scenario.c_str(), static_cast<double>(after - before) / 1024,
      static_cast<long long>(kDictEntries),
      static_cast<double>(after - before) * 1024 / static_cast<double>(kDictEntries), fill_s,
      static_cast<long long>(before), static_cast<long long>(after));
}

}  // namespace

int main(int argc, char** argv) {
  g_program = "bench_redis";
  Options o;
  if (int exit_code = 0; !options_to_run(argc, argv, kImpl, kSupported, kUnsupported, o, exit_code))
    return exit_code;
  const std::string& s = o.scenario;
  const bool one = s == "sync_add" || s == "pipelined_add" || s == "dict_set" || s == "dict_get" ||
                   s == "lock_pair";
  if (o.window == 0) o.window = s == "clients_window_add" ? 16 : 64;

  arm_watchdog(static_cast<unsigned>(std::ceil(o.seconds)) + 40);

  int rc = 0;
  Server server;
  try {
    server = start_server();
    if (one)
      one_client(o, server);
    else if (s == "clients_sync_add" || s == "clients_window_add")
      many_clients(o, server, s == "clients_window_add");
    else if (s == "queue_64B")
      queue_transfer(o, server, 64, 0);
    else if (s == "queue_1MiB")
      queue_transfer(o, server, std::size_t{1} << 20, kQueueBound);
    else
      dict_1M_rss(o, server);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_redis: %s\n", e.what());
    rc = 1;
  }
  std::fflush(stdout);
  if (server.pid > 0) kill(server.pid, SIGTERM);
  if (!reap_all(rc == 0 ? 5.0 : 0.5) && rc == 0) {
    std::fprintf(stderr, "bench_redis: a child process failed\n");
    rc = 1;
  }
  alarm(0);
  return rc;
}
