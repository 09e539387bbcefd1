// The same-host physical floor of the benchmark (bench/README.md): a blocking AF_UNIX stream
// ping-pong between two processes, each message a 4-byte length and a 20-byte payload. No
// messaging library and no object layer: what a round trip costs when only the kernel is in the
// way. The echo server runs in a child process; the socket's name in /tmp exists only until the
// clients have connected. With --spin US a client polls for each reply (reads that do not block)
// for up to US microseconds before it blocks, as zmanager's unix:// client does (ReplySpin):
// the floor for a client that polls.
//   bench_unix_floor --scenario NAME [--seconds S] [--window W] [--clients N] [--items K]
//                    [--spin US]
// prints one JSON line, in the format every benchmark program shares.
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "floor_harness.hpp"

namespace {

using namespace floor_harness;

constexpr const char* kImpl = "unix";
constexpr std::size_t kMsgBytes = 20;  // "a ~20-byte message": about an encoded add(i, 1)
constexpr std::size_t kHeaderBytes = 4;
constexpr std::uint32_t kMaxFrame = 1 << 20;
constexpr int kIoTimeoutMs = 5000;  // a reply later than this means something is broken
constexpr int kServerPollMs = 50;   // how often an idle server checks whether to stop

// The scenarios this program runs, and those the spec names that it has no equivalent for (they
// print `unsupported`). Any other name is a typo and an error.
constexpr std::array<const char*, 4> kSupported = {"sync_add", "lock_pair", "pipelined_add",
                                                   "clients_sync_add"};
constexpr std::array<const char*, 7> kUnsupported = {
    "dict_set",   "dict_get",       "queue_64B",  "clients_window_add",
    "queue_1MiB", "parked_waiters", "dict_1M_rss"};

// ---- Sockets and framing ---------------------------------------------------------------------

void set_timeouts(int fd, int recv_ms, int send_ms) {
  const timeval rcv{recv_ms / 1000, (recv_ms % 1000) * 1000};
  const timeval snd{send_ms / 1000, (send_ms % 1000) * 1000};
  if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &rcv, sizeof rcv) != 0 ||
      setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &snd, sizeof snd) != 0)
    throw std::system_error(errno, std::generic_category(), "setsockopt");
}

sockaddr_un socket_address() {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, g_socket_path, sizeof addr.sun_path);
  return addr;
}

int listen_socket() {
  std::snprintf(g_socket_path, sizeof g_socket_path, "/tmp/zmanager-unix-floor-%d.sock",
                static_cast<int>(getpid()));
  unlink(g_socket_path);  // a leftover of a killed run with the same pid
  const int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "socket");
  const sockaddr_un addr = socket_address();
  if (bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 || listen(fd, 128) != 0)
    throw std::system_error(errno, std::generic_category(), "bind/listen");
  return fd;
}

int connect_socket() {
  const int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "socket");
  const sockaddr_un addr = socket_address();
  if (connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0)
    throw std::system_error(errno, std::generic_category(), "connect");
  set_timeouts(fd, kIoTimeoutMs, kIoTimeoutMs);
  return fd;
}

void append_frame(std::vector<char>& out, std::string_view payload) {
  const auto len = static_cast<std::uint32_t>(payload.size());
  const auto* h = reinterpret_cast<const char*>(&len);  // host order: both ends are this host
  out.insert(out.end(), h, h + kHeaderBytes);
  out.insert(out.end(), payload.begin(), payload.end());
}

// Buffers a stream and cuts it into frames: one read() takes whatever has arrived, which may be
// many frames (pipelined) or part of one.
class FrameReader {
 public:
  enum class Fill { kData, kEof, kTimeout };

  // flags: MSG_DONTWAIT to poll (kTimeout when nothing has arrived).
  Fill fill(int fd, int flags = 0) {
    if (begin_ > 0) {  // keep the unread tail at the front
      std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    if (end_ == buf_.size()) buf_.resize(buf_.size() * 2);  // a frame larger than the buffer
    for (;;) {
      const ssize_t n = recv(fd, buf_.data() + end_, buf_.size() - end_, flags);
      if (n > 0) {
        end_ += static_cast<std::size_t>(n);
        return Fill::kData;
      }
      if (n == 0) return Fill::kEof;
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return Fill::kTimeout;  // SO_RCVTIMEO, polls
      throw std::system_error(errno, std::generic_category(), "recv");
    }
  }

  // The next complete frame's payload, valid until the next fill().
  bool next(std::string_view& payload) {
    if (end_ - begin_ < kHeaderBytes) return false;
    std::uint32_t len;
    std::memcpy(&len, buf_.data() + begin_, kHeaderBytes);
    if (len > kMaxFrame) throw std::runtime_error("frame too large");
    if (end_ - begin_ < kHeaderBytes + len) return false;
    payload = std::string_view(buf_.data() + begin_ + kHeaderBytes, len);
    begin_ += kHeaderBytes + len;
    return true;
  }

 private:
  std::vector<char> buf_ = std::vector<char>(1 << 16);
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
};

// ---- The echo server -------------------------------------------------------------------------

// Sends back every complete frame that has arrived, in one write.
void echo_frames(int fd, FrameReader& in, std::vector<char>& out) {
  std::string_view payload;
  while (in.next(payload)) append_frame(out, payload);
  if (!out.empty()) write_all(fd, out.data(), out.size());
  out.clear();
}

// Waits for a connection, or for the parent to give up (false).
bool wait_for_connection(int listen_fd, int stop_r) {
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  pollfd fds[2] = {{listen_fd, POLLIN, 0}, {stop_r, POLLIN, 0}};
  while (Clock::now() < deadline) {
    const int r = poll(fds, 2, kServerPollMs);
    if (r < 0 && errno != EINTR) throw std::system_error(errno, std::generic_category(), "poll");
    if (r <= 0) continue;
    if (fds[1].revents != 0) return false;
    if (fds[0].revents & POLLIN) return true;
  }
  throw std::runtime_error("no client connected");
}

// One client: plain blocking reads and writes, nothing else between them.
int serve_one(int listen_fd, int stop_r) {
  if (!wait_for_connection(listen_fd, stop_r)) return 0;
  const int fd = accept(listen_fd, nullptr, nullptr);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "accept");
  close(listen_fd);
  // The receive timeout only lets an idle server notice that it should stop.
  set_timeouts(fd, kServerPollMs, kIoTimeoutMs);
  FrameReader in;
  std::vector<char> out;
  for (;;) {
    switch (in.fill(fd)) {
      case FrameReader::Fill::kEof:
        close(fd);
        return 0;
      case FrameReader::Fill::kTimeout:
        if (parent_says_stop(stop_r)) {
          close(fd);
          return 0;
        }
        continue;
      case FrameReader::Fill::kData:
        echo_frames(fd, in, out);
        break;
    }
  }
}

// Many clients: poll() says which connections have data; each gets one read and its replies.
int serve_many(int listen_fd, int stop_r) {
  struct Conn {
    FrameReader in;
    std::vector<char> out;
  };
  std::vector<pollfd> fds = {{listen_fd, POLLIN, 0}, {stop_r, POLLIN, 0}};
  std::vector<Conn> conns;  // conns[i] belongs to fds[i + 2]
  for (;;) {
    const int r = poll(fds.data(), fds.size(), kServerPollMs);
    if (r < 0 && errno != EINTR) throw std::system_error(errno, std::generic_category(), "poll");
    if (r <= 0) continue;
    if (fds[1].revents != 0) break;
    if (fds[0].revents & POLLIN) {
      const int fd = accept(listen_fd, nullptr, nullptr);
      if (fd < 0) throw std::system_error(errno, std::generic_category(), "accept");
      // Writes are bounded; reads only happen when poll() said there is data.
      set_timeouts(fd, kIoTimeoutMs, kIoTimeoutMs);
      fds.push_back({fd, POLLIN, 0});
      conns.emplace_back();
    }
    for (std::size_t i = 2; i < fds.size();) {
      Conn& c = conns[i - 2];
      if (fds[i].revents != 0) {
        const auto got = c.in.fill(fds[i].fd);
        if (got == FrameReader::Fill::kEof) {
          close(fds[i].fd);
          fds.erase(fds.begin() + static_cast<std::ptrdiff_t>(i));
          conns.erase(conns.begin() + static_cast<std::ptrdiff_t>(i - 2));
          continue;
        }
        if (got == FrameReader::Fill::kTimeout) throw std::runtime_error("read timed out");
        echo_frames(fds[i].fd, c.in, c.out);
      }
      ++i;
    }
  }
  for (std::size_t i = 2; i < fds.size(); ++i) close(fds[i].fd);
  close(listen_fd);
  return 0;
}

// Starts the server on a fresh socket in /tmp. stop_w: closing it tells the server to exit.
void start_server(bool many, int& stop_w) {
  const int listen_fd = listen_socket();  // before the fork: listening when clients connect
  Pipe stop = make_pipe();
  g_parent_only_fds.push_back(stop.w);
  spawn([&] {
    close(stop.w);
    return many ? serve_many(listen_fd, stop.r) : serve_one(listen_fd, stop.r);
  });
  close(listen_fd);
  close(stop.r);
  stop_w = stop.w;
}

// ---- Clients ---------------------------------------------------------------------------------

class EchoClient {
 public:
  explicit EchoClient(std::chrono::microseconds spin) : fd_(connect_socket()), spin_(spin) {}
  ~EchoClient() { close(fd_); }
  EchoClient(const EchoClient&) = delete;
  EchoClient& operator=(const EchoClient&) = delete;

  // One request: a sequence number, then add's two arguments and an operation tag as padding to
  // the size of a small call. Queued until flush(), so a batch costs one write.
  void queue(std::uint64_t seq, std::uint32_t tag) {
    std::array<char, kMsgBytes> buf{};
    const std::uint32_t args[3] = {static_cast<std::uint32_t>(seq), 1, tag};
    std::memcpy(buf.data(), &seq, sizeof seq);
    std::memcpy(buf.data() + sizeof seq, args, sizeof args);
    append_frame(out_, std::string_view(buf.data(), buf.size()));
  }

  void flush() {
    write_all(fd_, out_.data(), out_.size());
    out_.clear();
  }

  // The sequence number of the next reply, waiting for it.
  std::uint64_t recv() {
    std::uint64_t seq;
    while (!try_recv(seq)) {
      auto got = FrameReader::Fill::kTimeout;
      for (const auto until = Clock::now() + spin_;
           got == FrameReader::Fill::kTimeout && Clock::now() < until;)
        got = in_.fill(fd_, MSG_DONTWAIT);
      if (got == FrameReader::Fill::kTimeout) got = in_.fill(fd_);
      if (got == FrameReader::Fill::kEof) throw std::runtime_error("the server closed");
      if (got == FrameReader::Fill::kTimeout) throw std::runtime_error("no reply within timeout");
    }
    return seq;
  }

  // The next reply if it has already arrived.
  bool try_recv(std::uint64_t& seq) {
    std::string_view payload;
    if (!in_.next(payload)) return false;
    if (payload.size() != kMsgBytes) throw std::runtime_error("malformed reply");
    std::memcpy(&seq, payload.data(), sizeof seq);
    return true;
  }

  std::uint64_t next_seq = 0;

 private:
  int fd_;
  const std::chrono::microseconds spin_;  // --spin
  FrameReader in_;
  std::vector<char> out_;
};

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
      c.queue(seq, static_cast<std::uint32_t>(t));
      c.flush();
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

// `window` requests written at once, then replies read as they come, each batch of replies
// answered with as many new requests in one write; the replies still in flight when time is up
// are drained, not counted.
Measured run_window(EchoClient& c, double seconds, int window) {
  Measured m;
  m.start = Clock::now();
  const auto stop = m.start + to_duration(seconds);
  std::uint64_t sent = c.next_seq;
  std::uint64_t expected = c.next_seq;
  for (int i = 0; i < window; ++i) c.queue(sent++, 0);
  c.flush();
  for (;;) {
    // One stream: replies come back in the order the requests were written.
    std::uint64_t seq = c.recv();
    int batch = 0;
    do {
      if (seq != expected++) throw std::runtime_error("reply out of order");
      ++batch;
    } while (c.try_recv(seq));
    m.n += batch;
    m.end = Clock::now();
    if (m.end >= stop) break;
    for (int i = 0; i < batch; ++i) c.queue(sent++, 0);
    c.flush();
  }
  while (expected < sent)
    if (c.recv() != expected++) throw std::runtime_error("reply out of order");
  c.next_seq = sent;
  return m;
}

// ---- Scenarios -------------------------------------------------------------------------------

void one_client(const Options& o, std::chrono::microseconds spin, bool windowed, int trips,
                int& stop_w) {
  start_server(false, stop_w);
  Measured m;
  {
    EchoClient client(spin);
    unlink(g_socket_path);  // connected: the name is no longer needed
    if (windowed) {
      run_window(client, warmup_seconds(o.seconds), o.window);
      m = run_window(client, o.seconds, o.window);
    } else {
      run_sync(client, warmup_seconds(o.seconds), trips, false);
      m = run_sync(client, o.seconds, trips, true);
    }
  }  // closing the connection ends the server
  print_one_client(kImpl, o, std::move(m), windowed ? o.window : 0);
}

// N client processes, each with its own connection, measured together.
void many_clients(const Options& o, std::chrono::microseconds spin, int& stop_w) {
  start_server(true, stop_w);
  const Aggregate a = run_client_processes(
      o,
      [&](int, const std::function<void()>& ready) {
        EchoClient client(spin);
        run_sync(client, warmup_seconds(o.seconds), 1, false);
        ready();
        return run_sync(client, o.seconds, 1, false);
      },
      [] { unlink(g_socket_path); });  // all connected: the name is no longer needed
  print_aggregate(kImpl, o, a, 0);
}

}  // namespace

// Takes --spin US out of the command line (the other options are the floors' shared ones).
std::chrono::microseconds take_spin(int& argc, char** argv) {
  std::chrono::microseconds spin{0};
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]) != "--spin") {
      argv[kept++] = argv[i];
      continue;
    }
    spin = std::chrono::microseconds(integer_after(argc, argv, i, 100'000));
    ++i;
  }
  argc = kept;
  return spin;
}

int main(int argc, char** argv) {
  g_program = "bench_unix_floor";
  std::chrono::microseconds spin;
  try {
    spin = take_spin(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_unix_floor: %s\n", e.what());
    return 2;
  }
  Options o;
  if (int exit_code = 0; !options_to_run(argc, argv, kImpl, kSupported, kUnsupported, o, exit_code))
    return exit_code;
  const std::string& s = o.scenario;
  if (o.window == 0) o.window = 64;

  arm_watchdog(static_cast<unsigned>(std::ceil(o.seconds)) + 25);

  int stop_w = -1;
  int rc = 0;
  try {
    if (s == "sync_add")
      one_client(o, spin, false, 1, stop_w);
    else if (s == "lock_pair")
      one_client(o, spin, false, 2, stop_w);
    else if (s == "pipelined_add")
      one_client(o, spin, true, 1, stop_w);
    else
      many_clients(o, spin, stop_w);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_unix_floor: %s\n", e.what());
    rc = 1;
  }
  std::fflush(stdout);
  if (g_socket_path[0] != '\0') unlink(g_socket_path);
  close_fd(stop_w);  // the server's signal to exit
  if (!reap_all(rc == 0 ? 3.0 : 0.5) && rc == 0) {
    std::fprintf(stderr, "bench_unix_floor: a child process failed\n");
    rc = 1;
  }
  alarm(0);
  return rc;
}
