// The ZeroMQ floor of the benchmark (bench/README.md): raw cppzmq carrying the same traffic shapes
// as the zmanager scenarios, with no object layer, so the report can show how much of a zmanager
// call is transport. A ROUTER echo server runs in a child process; DEALER clients send 20-byte
// requests over tcp://127.0.0.1 and check that every reply is the one they expect. For
// queue_1MiB the server is a relay holding a bounded queue of 1 MiB items between a producer
// process and this one, the traffic of a managed queue with nothing else.
//   bench_zmq_floor --scenario NAME [--seconds S] [--window W] [--clients N] [--items K]
//                   [--client-work N] [--client-touch BYTES] [--client-code LINES]
//                   [--client-chase LINES] [--server-work N] [--server-touch BYTES]
//                   [--server-code LINES] [--server-chase LINES] [--server-syscalls N]
//                   [--work-after-send] [--server-loop-epoll]
// prints one JSON line, in the format every benchmark program shares. The options after --items
// are analysis aids, off unless given: they add plain work to each round trip (see AddedWork),
// or make the echo server wait as zmanager's does (serve_like_zmanager).
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
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
#include <deque>
#include <functional>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <zmq.hpp>

#include "floor_harness.hpp"

namespace {

using namespace floor_harness;

constexpr const char* kImpl = "zmq";
constexpr std::size_t kMsgBytes = 20;  // "a ~20-byte message": about an encoded add(i, 1)
constexpr int kIoTimeoutMs = 5000;     // a reply later than this means something is broken
constexpr int kServerPollMs = 50;      // how often an idle server checks whether to stop

// The scenarios this program runs, and those the spec names that it has no equivalent for (they
// print `unsupported`). Any other name is a typo and an error.
constexpr std::array<const char*, 8> kSupported = {
    "sync_add",      "dict_set",         "dict_get",           "lock_pair",
    "pipelined_add", "clients_sync_add", "clients_window_add", "queue_1MiB"};
constexpr std::array<const char*, 3> kUnsupported = {"queue_64B", "parked_waiters", "dict_1M_rss"};

// ---- Added work ------------------------------------------------------------------------------
// An analysis aid: plain work added to each round trip, to measure what work of a given size
// costs the floor itself. A zmanager call does more work than an echo; whether work of that size
// is what makes it slower is a question for these options (docs/performance.md, eighteenth and
// nineteenth days). The same kinds of work for either side, each off unless given.
struct SideWork {
  long muladds = 0;     // dependent multiply-adds per round trip
  long touch = 0;       // bytes of a buffer written, one byte per cache line, in address order
  long code_lines = 0;  // cache lines of code run, each a jump to the next in a shuffled order
  long data_lines = 0;  // cache lines of data read, each holding the next one's index (shuffled)
  long syscalls = 0;    // getppid(2) calls
  bool any() const { return muladds || touch || code_lines || data_lines || syscalls; }
};
struct AddedWork {
  SideWork client;          // by each client, per round trip (one-at-a-time scenarios only)
  SideWork server;          // by the server, per request
  bool after_send = false;  // the work follows the send (request or reply) instead of preceding it
  bool epoll_loop = false;  // the server waits as zmanager's does (serve_like_zmanager)
};
AddedWork g_added;  // set by main before the server is forked

void multiply_adds(long n) {
  // Each step depends on the one before, so the compiler cannot fold the loop and the CPU cannot
  // overlap its steps: n steps take about 4n cycles, with no memory traffic.
  volatile std::uint64_t seed = 1;
  std::uint64_t x = seed;
  for (long i = 0; i < n; ++i) x = x * 6364136223846793005ULL + 1442695040888963407ULL;
  seed = x;
}

constexpr std::size_t kLine = 64;

// 0..n-1 in an order no prefetcher follows: what the lines of a program's code and data that one
// call runs through look like to the caches, unlike a loop over an array.
std::vector<std::size_t> shuffled(std::size_t n) {
  std::vector<std::size_t> order(n);
  for (std::size_t i = 0; i < n; ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), std::mt19937_64(42));
  return order;
}

// Machine code (x86-64) spread over `lines` cache lines: each line holds a jump to the next one
// of a shuffled order, the last a return. Running it fetches every line once, about as a call
// through many small functions does, at the cost of a jump per line when the lines are cached.
class CodeChain {
 public:
  explicit CodeChain(std::size_t lines) : bytes_(lines * kLine) {
    if (lines == 0) return;
#if !defined(__x86_64__)
    throw std::runtime_error("--client-code and --server-code are for x86-64 only");
#endif
    void* mem = ::mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) throw std::runtime_error("mmap for --*-code failed");
    code_ = static_cast<unsigned char*>(mem);
    std::memset(code_, 0xcc, bytes_);  // int3 wherever no jump lands
    const auto order = shuffled(lines);
    for (std::size_t k = 0; k + 1 < lines; ++k) {
      unsigned char* at = code_ + order[k] * kLine;
      const auto rel = static_cast<std::int32_t>(static_cast<std::int64_t>(order[k + 1] * kLine) -
                                                 static_cast<std::int64_t>(order[k] * kLine + 5));
      at[0] = 0xe9;  // jmp rel32
      std::memcpy(at + 1, &rel, sizeof rel);
    }
    code_[order.back() * kLine] = 0xc3;  // ret
    entry_ = code_ + order.front() * kLine;
    if (::mprotect(code_, bytes_, PROT_READ | PROT_EXEC) != 0)
      throw std::runtime_error("mprotect for --*-code failed");
  }
  CodeChain(const CodeChain&) = delete;
  CodeChain& operator=(const CodeChain&) = delete;
  ~CodeChain() {
    if (code_) ::munmap(code_, bytes_);
  }
  void run() const {
    if (entry_) reinterpret_cast<void (*)()>(entry_)();
  }

 private:
  std::size_t bytes_;
  unsigned char* code_ = nullptr;
  unsigned char* entry_ = nullptr;
};

// `lines` cache lines of data, each holding the index of the next in a shuffled order: reading
// them is a chain of dependent loads, one miss after another when they are not cached.
class DataChase {
 public:
  explicit DataChase(std::size_t lines) : words_(lines * kWordsPerLine) {
    const auto order = shuffled(lines);
    for (std::size_t k = 0; k < lines; ++k)
      words_[order[k] * kWordsPerLine] = order[(k + 1) % lines];
    if (lines > 0) first_ = order.front();
  }
  void run() const {
    std::size_t at = first_;
    for (std::size_t k = 0; k < words_.size() / kWordsPerLine; ++k) at = words_[at * kWordsPerLine];
    volatile std::size_t sink = at;
    (void)sink;
  }

 private:
  static constexpr std::size_t kWordsPerLine = kLine / sizeof(std::size_t);
  std::vector<std::size_t> words_;
  std::size_t first_ = 0;
};

// One side's work. What it needs is made on its first round trip, in the process that runs it
// (each process works for one side only: the server, or one client).
void do_work(const SideWork& w) {
  if (!w.any()) return;  // the floor unchanged
  multiply_adds(w.muladds);
  static std::vector<char> buffer(static_cast<std::size_t>(w.touch));
  for (std::size_t i = 0; i < buffer.size(); i += kLine)
    buffer[i] = static_cast<char>(buffer[i] + 1);
  static const CodeChain code(static_cast<std::size_t>(w.code_lines));
  code.run();
  static const DataChase data(static_cast<std::size_t>(w.data_lines));
  data.run();
  for (long i = 0; i < w.syscalls; ++i) (void)::getppid();
}

// One-at-a-time scenarios only (run_sync); a window's calls get none.
void client_work() {
  do_work(g_added.client);
}

void server_work() {
  do_work(g_added.server);
}

// ---- The echo server -------------------------------------------------------------------------

// The server's ROUTER, bound to a port the OS picks, which the parent learns through endpoint_w.
zmq::socket_t bind_router(zmq::context_t& ctx, int endpoint_w) {
  zmq::socket_t router(ctx, zmq::socket_type::router);
  router.set(zmq::sockopt::linger, 0);
  // As zmanager's sockets: no high-water mark, since the clients' windows bound what is in flight
  // (at the default 1000 a ROUTER silently drops replies, and its view of a pipe's fill lags, so
  // that happens below 1000 in flight); and a reply that cannot be routed is an error, not a drop.
  router.set(zmq::sockopt::sndhwm, 0);
  router.set(zmq::sockopt::rcvhwm, 0);
  router.set(zmq::sockopt::router_mandatory, 1);
  router.set(zmq::sockopt::sndtimeo, kIoTimeoutMs);
  // Waiting in recv (not poll) keeps the echo path as short as ZeroMQ allows; the timeout only
  // lets an idle server notice that it should stop.
  router.set(zmq::sockopt::rcvtimeo, kServerPollMs);
  router.bind("tcp://127.0.0.1:*");
  const std::string endpoint = router.get(zmq::sockopt::last_endpoint);
  write_all(endpoint_w, endpoint.data(), endpoint.size());
  close(endpoint_w);
  return router;
}

// Sends `body` back to `peer`, the DEALER it came from.
void reply_to(zmq::socket_t& router, zmq::message_t& peer, zmq::message_t& body) {
  if (!router.send(peer, zmq::send_flags::sndmore) || !router.send(body, zmq::send_flags::none))
    throw std::runtime_error("reply not sent within the timeout");
}

// The routing frame of the next request; none once the parent says stop, which is checked each
// time the receive times out idle.
std::optional<zmq::message_t> next_peer(zmq::socket_t& router, int stop_r) {
  for (;;) {
    zmq::message_t peer;
    if (router.recv(peer)) return peer;
    if (parent_says_stop(stop_r)) return std::nullopt;
  }
}

// Sends every request back unchanged to the DEALER it came from: the least a server can do.
int serve(int endpoint_w, int stop_r) {
  zmq::context_t ctx(1);
  zmq::socket_t router = bind_router(ctx, endpoint_w);
  while (auto next = next_peer(router, stop_r)) {
    zmq::message_t& id = *next;
    zmq::message_t body;
    // A message's frames arrive together, so the body is already here when the identity is.
    if (!id.more() || !router.recv(body)) throw std::runtime_error("request without a body");
    while (body.more()) {  // not sent by our clients; dropped rather than echoed in pieces
      if (!router.recv(body)) throw std::runtime_error("truncated request");
    }
    if (!g_added.after_send) server_work();
    reply_to(router, id, body);
    if (g_added.after_send) server_work();
  }
  return 0;
}

// The echo server shaped as zmanager's poll step (server/src/server.cpp, Impl::serve), with no
// object layer: it waits in epoll_wait(2) on the ROUTER's descriptor beside its other ones, not
// inside ZeroMQ, so that other threads can send on the socket meanwhile; ZMQ_EVENTS says whether
// a message is really there (the descriptor is an edge that any operation may consume). Woken by
// the descriptor, it reads one request; found waiting, up to 1024. It replies at the end of the
// step. What this costs against serve() is what that way of waiting costs, whatever zmanager's
// own work per call.
int serve_like_zmanager(int endpoint_w, int stop_r) {
  zmq::context_t ctx(1);
  zmq::socket_t router = bind_router(ctx, endpoint_w);
  struct EpollSet {
    int fd = ::epoll_create1(EPOLL_CLOEXEC);
    ~EpollSet() {
      if (fd >= 0) ::close(fd);
    }
  } poll_set;
  if (poll_set.fd < 0) throw std::runtime_error("epoll_create1 failed");
  epoll_event watch{};
  watch.events = EPOLLIN;
  if (::epoll_ctl(poll_set.fd, EPOLL_CTL_ADD, router.get(zmq::sockopt::fd), &watch) != 0)
    throw std::runtime_error("epoll_ctl failed");
  std::vector<std::pair<zmq::message_t, zmq::message_t>> step;  // (peer, body)
  // As zmanager's router_unsure: after a send, or a read that did not empty the socket, the
  // descriptor's edge may be gone with a message waiting, so ZMQ_EVENTS is asked before sleeping.
  bool unsure = true;
  for (;;) {
    const bool ready = unsure && (router.get(zmq::sockopt::events) & ZMQ_POLLIN);
    if (!ready) {
      epoll_event got;
      if (::epoll_wait(poll_set.fd, &got, 1, kServerPollMs) == 0 && parent_says_stop(stop_r)) break;
    }
    unsure = true;
    for (int i = 0; i < (ready ? 1024 : 1); ++i) {
      zmq::message_t peer, body;
      if (!router.recv(peer, zmq::recv_flags::dontwait)) {
        unsure = false;
        break;
      }
      if (!peer.more() || !router.recv(body)) throw std::runtime_error("request without a body");
      step.emplace_back(std::move(peer), std::move(body));
    }
    for (auto& [peer, body] : step) {
      server_work();
      reply_to(router, peer, body);
      unsure = true;
    }
    step.clear();
  }
  return 0;
}

// ---- The queue relay (queue_1MiB) -----------------------------------------------------------

constexpr std::size_t kItemBytes = std::size_t{1} << 20;
constexpr std::size_t kQueueBound = 16;  // the Python baseline's maxsize for 1 MiB items
constexpr char kPut = 'P';
constexpr char kGet = 'G';

// A queue of at most kQueueBound items, as a managed queue: a put is answered once its item is
// queued (a put to a full queue waits for room), a get with the next item (a get of an empty
// queue waits for one). Items are moved from the producer's message to the consumer's, never
// copied. One producer and one consumer, each with one request in flight.
int serve_queue(int endpoint_w, int stop_r) {
  zmq::context_t ctx(1);
  zmq::socket_t router = bind_router(ctx, endpoint_w);
  std::deque<zmq::message_t> items;
  std::optional<std::pair<zmq::message_t, zmq::message_t>> parked_put;  // (peer, item)
  std::optional<zmq::message_t> parked_get;                             // peer
  auto reply = [&](zmq::message_t& peer, zmq::message_t&& body) { reply_to(router, peer, body); };
  while (auto next = next_peer(router, stop_r)) {
    zmq::message_t& peer = *next;
    zmq::message_t tag;
    if (!peer.more() || !router.recv(tag) || tag.size() != 1)
      throw std::runtime_error("request without a tag");
    if (*tag.data<char>() == kPut) {
      zmq::message_t item;
      if (!tag.more() || !router.recv(item) || item.more())
        throw std::runtime_error("a put without its item");
      if (parked_get) {
        reply(*parked_get, std::move(item));
        parked_get.reset();
        reply(peer, zmq::message_t());
      } else if (items.size() < kQueueBound) {
        items.push_back(std::move(item));
        reply(peer, zmq::message_t());
      } else if (!parked_put) {
        parked_put.emplace(std::move(peer), std::move(item));
      } else {
        throw std::runtime_error("a second put while one waits");
      }
    } else if (*tag.data<char>() == kGet) {
      if (items.empty()) {
        if (parked_get) throw std::runtime_error("a second get while one waits");
        parked_get.emplace(std::move(peer));
        continue;
      }
      reply(peer, std::move(items.front()));
      items.pop_front();
      if (parked_put) {
        items.push_back(std::move(parked_put->second));
        reply(parked_put->first, zmq::message_t());
        parked_put.reset();
      }
    } else {
      throw std::runtime_error("an unknown request tag");
    }
  }
  return 0;
}

// The echo server the options ask for.
int serve_echo(int endpoint_w, int stop_r) {
  return g_added.epoll_loop ? serve_like_zmanager(endpoint_w, stop_r) : serve(endpoint_w, stop_r);
}

// Starts the server; returns its endpoint. stop_w: closing it tells the server to exit.
std::string start_server(int& stop_w, int (*serve_with)(int, int) = serve_echo) {
  Pipe endpoint = make_pipe();
  Pipe stop = make_pipe();
  g_parent_only_fds.push_back(stop.w);
  spawn([&] {
    close(endpoint.r);
    close(stop.w);
    return serve_with(endpoint.w, stop.r);
  });
  close(endpoint.w);
  close(stop.r);
  stop_w = stop.w;
  char buf[256];
  const std::size_t n =
      read_from_children(endpoint.r, buf, sizeof buf, Clock::now() + std::chrono::seconds(10));
  close(endpoint.r);
  if (n == 0 || n == sizeof buf) throw std::runtime_error("the server sent no endpoint");
  return std::string(buf, n);
}

// ---- Clients ---------------------------------------------------------------------------------

zmq::socket_t connect_dealer(zmq::context_t& ctx, const std::string& endpoint,
                             int rcvtimeo_ms = kIoTimeoutMs) {
  zmq::socket_t sock(ctx, zmq::socket_type::dealer);
  sock.set(zmq::sockopt::linger, 0);
  sock.set(zmq::sockopt::sndhwm, 0);  // as the server: the window bounds what is in flight
  sock.set(zmq::sockopt::rcvhwm, 0);
  sock.set(zmq::sockopt::rcvtimeo, rcvtimeo_ms);
  sock.set(zmq::sockopt::sndtimeo, kIoTimeoutMs);
  sock.connect(endpoint);
  return sock;
}

class EchoClient {
 public:
  EchoClient(zmq::context_t& ctx, const std::string& endpoint)
      : sock_(connect_dealer(ctx, endpoint)) {}

  // One request: a sequence number, then add's two arguments and an operation tag as padding to
  // the size of a small call.
  void send(std::uint64_t seq, std::uint32_t tag) {
    std::array<char, kMsgBytes> buf{};
    const std::uint32_t args[3] = {static_cast<std::uint32_t>(seq), 1, tag};
    std::memcpy(buf.data(), &seq, sizeof seq);
    std::memcpy(buf.data() + sizeof seq, args, sizeof args);
    if (!sock_.send(zmq::buffer(buf), zmq::send_flags::none))
      throw std::runtime_error("send timed out");
  }

  // The sequence number of the next reply.
  std::uint64_t recv() {
    zmq::message_t reply;
    if (!sock_.recv(reply)) throw std::runtime_error("no reply within the timeout");
    if (reply.size() != kMsgBytes || reply.more()) throw std::runtime_error("malformed reply");
    std::uint64_t seq;
    std::memcpy(&seq, reply.data(), sizeof seq);
    return seq;
  }

  std::uint64_t next_seq = 0;

 private:
  zmq::socket_t sock_;
};

// One operation at a time, each of `trips` round trips (lock_pair: acquire, then release).
Measured run_sync(EchoClient& c, double seconds, int trips, bool record) {
  Measured m;
  if (record) m.latency_us.reserve(1 << 16);
  m.start = Clock::now();
  const auto stop = m.start + to_duration(seconds);
  Clock::time_point done;
  do {
    const auto begin = Clock::now();
    for (int t = 0; t < trips; ++t) {
      const std::uint64_t seq = c.next_seq++;
      if (!g_added.after_send) client_work();
      c.send(seq, static_cast<std::uint32_t>(t));
      if (g_added.after_send) client_work();
      if (c.recv() != seq) throw std::runtime_error("reply out of order");
    }
    done = Clock::now();
    if (record)
      m.latency_us.push_back(std::chrono::duration<double, std::micro>(done - begin).count());
    ++m.n;
  } while (done < stop);
  m.end = done;
  return m;
}

// `window` requests in flight: each reply is answered with a new request until time is up; the
// replies still in flight then are drained, not counted.
Measured run_window(EchoClient& c, double seconds, int window) {
  Measured m;
  m.start = Clock::now();
  const auto stop = m.start + to_duration(seconds);
  std::uint64_t sent = c.next_seq;
  std::uint64_t expected = c.next_seq;
  for (int i = 0; i < window; ++i) c.send(sent++, 0);
  for (;;) {
    // One connection, one server: replies come back in the order they were sent.
    if (c.recv() != expected++) throw std::runtime_error("reply out of order");
    ++m.n;
    m.end = Clock::now();
    if (m.end >= stop) break;
    c.send(sent++, 0);
  }
  while (expected < sent)
    if (c.recv() != expected++) throw std::runtime_error("reply out of order");
  c.next_seq = sent;
  return m;
}

Measured run_client(EchoClient& c, const Options& o, bool windowed, int trips, bool record) {
  if (windowed) {
    run_window(c, warmup_seconds(o.seconds), o.window);
    return run_window(c, o.seconds, o.window);
  }
  run_sync(c, warmup_seconds(o.seconds), trips, false);
  return run_sync(c, o.seconds, trips, record);
}

// The queue's producer, a process of its own: puts items until the parent says stop. Each put
// copies the item into its message, as a zmanager put copies the user's bytes into its frame.
int produce(const std::string& endpoint, int stop_r) {
  zmq::context_t ctx(1);
  // Short receive timeouts: a put to a full queue waits as long as the consumer does not get,
  // and the consumer stops getting before it says stop.
  zmq::socket_t sock = connect_dealer(ctx, endpoint, kServerPollMs);
  const std::vector<char> item(kItemBytes, 'x');
  while (!parent_says_stop(stop_r)) {
    if (!sock.send(zmq::buffer(&kPut, 1), zmq::send_flags::sndmore) ||
        !sock.send(zmq::buffer(item), zmq::send_flags::none))
      throw std::runtime_error("put not sent within the timeout");
    zmq::message_t done;
    while (!sock.recv(done))
      if (parent_says_stop(stop_r)) return 0;
  }
  return 0;
}

// Gets items one at a time until `seconds` have passed; each must be whole.
Measured consume(zmq::socket_t& sock, double seconds) {
  Measured m;
  m.start = Clock::now();
  const auto stop = m.start + to_duration(seconds);
  do {
    if (!sock.send(zmq::buffer(&kGet, 1), zmq::send_flags::none))
      throw std::runtime_error("get not sent within the timeout");
    zmq::message_t item;
    if (!sock.recv(item)) throw std::runtime_error("no item within the timeout");
    if (item.size() != kItemBytes || item.more()) throw std::runtime_error("a malformed item");
    ++m.n;
    m.end = Clock::now();
  } while (m.end < stop);
  return m;
}

// ---- Scenarios -------------------------------------------------------------------------------

// A producer process puts 1 MiB items through the relay while this process gets them: MiB/s.
void queue_relay(const Options& o, int& stop_w) {
  const std::string endpoint = start_server(stop_w, serve_queue);
  Pipe producer_stop = make_pipe();
  g_parent_only_fds.push_back(producer_stop.w);
  spawn([&] { return produce(endpoint, producer_stop.r); });
  close(producer_stop.r);
  Measured m;
  {
    zmq::context_t ctx(1);
    zmq::socket_t sock = connect_dealer(ctx, endpoint);
    consume(sock, warmup_seconds(o.seconds));
    m = consume(sock, o.seconds);
    close_fd(producer_stop.w);
  }
  const double items_per_s = static_cast<double>(m.n) / seconds_between(m.start, m.end);
  std::printf(
      "{\"impl\": \"%s\", \"scenario\": \"%s\", \"value\": %.1f, \"unit\": \"MiB/s\", "
      "\"items_per_s\": %.1f, \"n\": %lld, \"maxsize\": %zu}\n",
      kImpl, o.scenario.c_str(), items_per_s * static_cast<double>(kItemBytes) / (1 << 20),
      items_per_s, static_cast<long long>(m.n), kQueueBound);
}

// One client in this process (forked the server first, so the context is created after).
void one_client(const Options& o, bool windowed, int trips, int& stop_w) {
  const std::string endpoint = start_server(stop_w);
  Measured m;
  {
    zmq::context_t ctx(1);
    EchoClient client(ctx, endpoint);
    m = run_client(client, o, windowed, trips, !windowed);
  }
  print_one_client(kImpl, o, std::move(m), windowed ? o.window : 0);
}

// N client processes, each with its own context and DEALER, measured together.
void many_clients(const Options& o, bool windowed, int& stop_w) {
  const std::string endpoint = start_server(stop_w);
  const Aggregate a = run_client_processes(o, [&](int, const std::function<void()>& ready) {
    zmq::context_t ctx(1);
    EchoClient client(ctx, endpoint);
    auto run = [&](double seconds) {
      return windowed ? run_window(client, seconds, o.window) : run_sync(client, seconds, 1, false);
    };
    run(warmup_seconds(o.seconds));
    ready();
    return run(o.seconds);
  });
  print_aggregate(kImpl, o, a, windowed ? o.window : 0);
}

// Takes the AddedWork options out of the command line (the others are the floors' shared ones).
AddedWork take_added_work(int& argc, char** argv) {
  AddedWork added;
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--work-after-send") {
      added.after_send = true;
      continue;
    }
    if (arg == "--server-loop-epoll") {
      added.epoll_loop = true;
      continue;
    }
    long* field = arg == "--client-work"       ? &added.client.muladds
                  : arg == "--client-touch"    ? &added.client.touch
                  : arg == "--client-code"     ? &added.client.code_lines
                  : arg == "--client-chase"    ? &added.client.data_lines
                  : arg == "--server-work"     ? &added.server.muladds
                  : arg == "--server-touch"    ? &added.server.touch
                  : arg == "--server-code"     ? &added.server.code_lines
                  : arg == "--server-chase"    ? &added.server.data_lines
                  : arg == "--server-syscalls" ? &added.server.syscalls
                                               : nullptr;
    if (field == nullptr) {
      argv[kept++] = argv[i];
      continue;
    }
    *field = integer_after(argc, argv, i, 10'000'000);
    ++i;
  }
  argc = kept;
  return added;
}

}  // namespace

int main(int argc, char** argv) {
  g_program = "bench_zmq_floor";
  try {
    g_added = take_added_work(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_zmq_floor: %s\n", e.what());
    return 2;
  }
  Options o;
  if (int exit_code = 0; !options_to_run(argc, argv, kImpl, kSupported, kUnsupported, o, exit_code))
    return exit_code;
  const std::string& s = o.scenario;
  const bool sync = s == "sync_add" || s == "dict_set" || s == "dict_get";  // one round trip
  if (o.window == 0) o.window = s == "clients_window_add" ? 16 : 64;

  arm_watchdog(static_cast<unsigned>(std::ceil(o.seconds)) + 25);

  int stop_w = -1;
  int rc = 0;
  try {
    if (sync)
      one_client(o, false, 1, stop_w);
    else if (s == "lock_pair")
      one_client(o, false, 2, stop_w);
    else if (s == "pipelined_add")
      one_client(o, true, 1, stop_w);
    else if (s == "queue_1MiB")
      queue_relay(o, stop_w);
    else
      many_clients(o, s == "clients_window_add", stop_w);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_zmq_floor: %s\n", e.what());
    rc = 1;
  }
  std::fflush(stdout);
  close_fd(stop_w);  // the server's signal to exit
  if (!reap_all(rc == 0 ? 3.0 : 0.5) && rc == 0) {
    std::fprintf(stderr, "bench_zmq_floor: a child process failed\n");
    rc = 1;
  }
  alarm(0);
  return rc;
}
