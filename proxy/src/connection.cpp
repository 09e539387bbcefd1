// The client end of the protocol: one DEALER socket shared by the calling threads (see
// Connection). Replies are matched to requests by id, so any number of calls can be in flight
// and complete in any order.
#include "zmanager/connection.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <functional>
#include <optional>
#include <thread>
#include <unordered_map>
#include <utility>

#include "zmanager/wire/log.hpp"
#include "zmanager/wire/protocol.hpp"

namespace zmanager {
namespace {

using Clock = std::chrono::steady_clock;
using wire::Op;

std::exception_ptr as_exception(const std::function<void()>& thrower) {
  try {
    thrower();
  } catch (...) {
    return std::current_exception();
  }
  return nullptr;
}

wire::WireError read_error(const wire::Inbound& in) {
  wire::WireError e;
  try {
    in.field(2).convert(e);
  } catch (const std::exception&) {
    e = wire::WireError{"bad_request", "ProtocolError", "malformed error reply", "", ""};
  }
  return e;
}

// Which thread may touch the socket. A ZeroMQ socket belongs to one thread at a time, and a
// hand-off to a dedicated I/O thread costs a wake-up on each side of every call (the biggest
// cost of a synchronous call on a small machine). So there is no such thread: the socket is a
// role that the calling threads take in turn (leader/followers). A thread sends its request
// itself when the socket is free; a thread waiting for a reply takes the socket and reads
// replies (completing other threads' calls too) until its own has arrived, then hands the
// socket back. Requests made while another thread holds the socket are queued for it, with an
// eventfd to wake it from its poll. A keeper thread takes the socket only while nobody else
// does, to send heartbeats and read what arrives for calls nobody is waiting on yet.
class Connection final : public detail::Channel {
 public:
  explicit Connection(const ConnectOptions& options);
  ~Connection() override;
  void start_keeper();

  std::shared_ptr<detail::CallState> send(std::uint64_t request_id, wire::Encoder& enc,
                                          bool want_reply) override;
  void release(std::uint64_t object) override;
  void close() override;
  /// close(), then waits until what it queued (the goodbye above all) has left, up to the linger
  /// time: at exit no destructor does, and the process would end with the goodbye unsent.
  void close_and_flush();
  bool wait_for_reply(detail::CallState& state, std::optional<Clock::time_point> deadline) override;
  CallTimeout default_call_timeout() const override { return call_timeout_; }
  bool sends_call_timeouts() const override { return server_version_ >= 2; }

 private:
  struct Outgoing {
    std::uint64_t request_id;
    wire::Frames frames;
    std::shared_ptr<detail::CallState> state;  // null for notifications
  };
  /// What the keeper waits on; shared with it so that it never keeps the connection alive.
  struct KeeperSignal {
    std::mutex mu;
    std::condition_variable cv;
    bool stop = false;
  };

  void handshake(const ConnectOptions& options);
  std::shared_ptr<wire::Inbound> recv_handshake(Clock::time_point deadline);
  void enqueue(Outgoing out);

  // Socket role. take_socket() must be called with mu_ held; the others by the role holder.
  bool take_socket();
  void give_back_socket();
  void transmit(Outgoing& out);
  /// Sends what other threads queued; false once the connection is closing.
  bool send_queued();
  /// Reads and handles every message that has arrived; true if any completed a call.
  bool read_available();
  /// Heartbeat and liveness: pings when due, fails everything when the server went silent.
  void keep_alive(Clock::time_point now);
  /// Serves the socket until `state` is done or `deadline` passes.
  void pump(detail::CallState& state, std::optional<Clock::time_point> deadline);
  void keeper_tick();
  /// Flushes the queue, says goodbye and fails what is left: the end of the connection.
  void finish();
  void handle(std::shared_ptr<wire::Inbound> in);
  /// Fails every pending call, each with its own exception from `make_error` (an exception
  /// object is never shared between the threads that will catch it), and later calls alike.
  void fail_all(std::function<std::exception_ptr()> make_error);
  void notify_waiters();

  std::string address_;
  zmq::context_t context_{1};
  zmq::socket_t socket_{context_, zmq::socket_type::dealer};
  int wake_fd_ = -1;
  wire::Limits limits_;
  std::chrono::milliseconds heartbeat_{1000};  // fixed by the handshake
  std::chrono::milliseconds ttl_{10000};
  std::uint64_t server_version_ = 1;  // from the CHALLENGE
  CallTimeout call_timeout_;

  std::mutex mu_;                      // guards the fields below
  std::condition_variable socket_cv_;  // the socket was given back, or a call completed
  bool socket_taken_ = false;
  std::vector<Outgoing> queue_;  // for the thread holding the socket
  bool closing_ = false;
  bool finished_ = false;
  std::function<std::exception_ptr()> broken_;  // makes the error of a broken connection

  // Touched only by the thread holding the socket.
  std::unordered_map<std::uint64_t, std::shared_ptr<detail::CallState>> pending_;
  // Reading the clock for every message showed in profiles: messages set these flags, and the
  // times are taken once per poll in keep_alive().
  Clock::time_point last_heard_;
  Clock::time_point last_ping_;
  bool heard_ = false;  // a message arrived since keep_alive() last looked
  bool sent_ = false;   // a request went out since then (any request keeps the session alive)

  std::shared_ptr<KeeperSignal> keeper_signal_ = std::make_shared<KeeperSignal>();
  std::thread keeper_;
};

Connection::Connection(const ConnectOptions& options)
    : address_(options.address), call_timeout_(options.call_timeout) {
  socket_.set(zmq::sockopt::linger, 200);
  socket_.set(zmq::sockopt::sndhwm, 0);  // flow is bounded by the calls in flight, not by drops
  socket_.set(zmq::sockopt::rcvhwm, 0);
  // Not `immediate`: requests queue on the pipe while a connection is (re)established instead
  // of blocking the sender; a server that never answers is caught by the session ttl.
  try {
    socket_.connect(options.address);
  } catch (const zmq::error_t& e) {
    throw ConnectionError("cannot connect to '" + options.address + "': " + e.what());
  }
  handshake(options);
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) throw ConnectionError("eventfd failed");
  last_heard_ = last_ping_ = Clock::now();
}

void Connection::start_keeper() {
  keeper_ = std::thread([weak = weak_from_this(), signal = keeper_signal_,
                         period = std::max(heartbeat_ / 2, std::chrono::milliseconds(1))] {
    while (true) {
      {
        std::unique_lock lock(signal->mu);
        if (signal->cv.wait_for(lock, period, [&] { return signal->stop; })) return;
      }
      // Held only for one tick: if it is the last reference, the connection ends here, and
      // close() sees that it runs on this thread.
      auto self = std::static_pointer_cast<Connection>(weak.lock());
      if (!self) return;
      self->keeper_tick();
    }
  });
}

Connection::~Connection() {
  close();
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

std::shared_ptr<wire::Inbound> Connection::recv_handshake(Clock::time_point deadline) {
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) break;
    zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
    wire::poll(&item, 1, left);
    if (!(item.revents & ZMQ_POLLIN)) continue;
    auto frames = wire::recv_frames(socket_);
    if (!frames) continue;
    auto in = wire::Inbound::parse(std::move(*frames), limits_);
    if (in->op() == Op::kError) read_error(*in).raise();
    return in;
  }
  throw ConnectionError("no answer from a zmanager server at '" + address_ + "'");
}

void Connection::handshake(const ConnectOptions& options) {
  auto deadline = Clock::now() + options.timeout;
  wire::Nonce client_nonce = wire::random_nonce();
  {
    wire::Encoder enc;
    auto& pk = enc.packer();
    pk.pack_array(4);
    pk.pack(static_cast<std::uint8_t>(Op::kHello));
    pk.pack(wire::kProtocolVersion);
    pk.pack_bin(client_nonce.size());
    pk.pack_bin_body(reinterpret_cast<const char*>(client_nonce.data()), client_nonce.size());
    pk.pack(options.name);
    auto frames = wire::to_frames(enc);
    wire::send_frames(socket_, frames);
  }
  auto challenge = recv_handshake(deadline);
  wire::Nonce server_nonce;
  if (challenge->op() != Op::kChallenge || !wire::read_nonce(challenge->field(2), server_nonce))
    throw ProtocolError("unexpected handshake reply from '" + address_ + "'");
  server_version_ = wire::as_u64(challenge->field(1), "protocol version");
  bool server_proved = wire::equal_constant_time(
      challenge->field(3),
      wire::proof(options.authkey, wire::kServerLabel, client_nonce, server_nonce));
  {
    // Answer even when the server's proof is wrong, so the server logs the failed attempt.
    wire::Mac mine = wire::proof(options.authkey, wire::kClientLabel, server_nonce, client_nonce);
    wire::Encoder enc;
    auto& pk = enc.packer();
    pk.pack_array(2);
    pk.pack(static_cast<std::uint8_t>(Op::kAuth));
    pk.pack_bin(mine.size());
    pk.pack_bin_body(reinterpret_cast<const char*>(mine.data()), mine.size());
    auto frames = wire::to_frames(enc);
    wire::send_frames(socket_, frames);
  }
  if (!server_proved)
    throw AuthenticationError("the server at '" + address_ +
                              "' did not prove it knows the authkey (the keys differ)");
  auto welcome = recv_handshake(deadline);
  if (welcome->op() != Op::kWelcome) throw ProtocolError("unexpected handshake reply");
  heartbeat_ = std::chrono::milliseconds(wire::as_u64(welcome->field(2), "heartbeat"));
  ttl_ = std::chrono::milliseconds(wire::as_u64(welcome->field(3), "ttl"));
  if (heartbeat_.count() == 0) heartbeat_ = std::chrono::milliseconds(1000);
}

void Connection::enqueue(Outgoing out) {
  bool direct = false, wake = false;
  {
    std::lock_guard lock(mu_);
    if (broken_ || closing_) {
      if (out.state)
        out.state->fail(broken_ ? broken_()
                                : std::make_exception_ptr(ConnectionError("connection closed")));
      return;
    }
    direct = take_socket();
    if (!direct) {
      wake = queue_.empty();
      queue_.push_back(std::move(out));
    }
  }
  if (direct) {
    try {
      transmit(out);
    } catch (...) {
      give_back_socket();
      throw;
    }
    give_back_socket();
  } else if (wake) {
    std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);
  }
}

std::shared_ptr<detail::CallState> Connection::send(std::uint64_t request_id, wire::Encoder& enc,
                                                    bool want_reply) {
  auto state = want_reply ? std::make_shared<detail::CallState>(weak_from_this()) : nullptr;
  enqueue(Outgoing{request_id, wire::to_frames(enc), state});
  return state;
}

void Connection::release(std::uint64_t object) {
  if (object == wire::kServerObject) return;
  wire::Encoder enc;
  detail::begin_call(enc, 0, wire::kServerObject, "release");
  enc.packer().pack_array(1);
  enc.packer().pack_array(1);
  enc.packer().pack(object);
  detail::end_call(enc);
  enqueue(Outgoing{0, wire::to_frames(enc), nullptr});
}

bool Connection::take_socket() {
  if (socket_taken_) return false;
  socket_taken_ = true;
  return true;
}

void Connection::give_back_socket() {
  // Requests queued while this thread held the socket are sent before it is given back, so
  // none waits for the next holder.
  while (true) {
    std::vector<Outgoing> batch;
    {
      std::lock_guard lock(mu_);
      if (queue_.empty() || finished_) {
        socket_taken_ = false;
        break;
      }
      batch.swap(queue_);
    }
    for (auto& out : batch) transmit(out);
  }
  socket_cv_.notify_all();
}

void Connection::transmit(Outgoing& out) {
  if (out.state) pending_.emplace(out.request_id, std::move(out.state));
  wire::send_frames(socket_, out.frames);
  sent_ = true;
}

bool Connection::send_queued() {
  std::vector<Outgoing> batch;
  {
    std::lock_guard lock(mu_);
    if (closing_) return false;
    batch.swap(queue_);
  }
  for (auto& out : batch) transmit(out);
  return true;
}

bool Connection::read_available() {
  bool completed = false;
  while (auto frames = wire::recv_frames(socket_)) {
    try {
      auto in = wire::Inbound::parse(std::move(*frames), limits_);
      completed |= in->op() == Op::kReply || in->op() == Op::kError;
      handle(std::move(in));
    } catch (const std::exception& e) {
      log::warn("dropped a malformed message from ", address_, ": ", e.what());
    }
  }
  if (completed) notify_waiters();
  return completed;
}

void Connection::notify_waiters() {
  // Taking the mutex orders this after a waiter's check of its call, so the wake-up is not lost.
  { std::lock_guard lock(mu_); }
  socket_cv_.notify_all();
}

void Connection::keep_alive(Clock::time_point now) {
  if (std::exchange(heard_, false)) last_heard_ = now;
  if (std::exchange(sent_, false)) last_ping_ = now;
  if (now - last_heard_ > ttl_ && !pending_.empty()) {
    fail_all([message = "the server at '" + address_ +
                        "' stopped answering (no reply within the session ttl)"] {
      return std::make_exception_ptr(ConnectionError(message));
    });
  }
  if (now >= last_ping_ + heartbeat_) {
    wire::Encoder enc;
    enc.packer().pack_array(1);
    enc.packer().pack(static_cast<std::uint8_t>(Op::kPing));
    auto frames = wire::to_frames(enc);
    wire::send_frames(socket_, frames);
    last_ping_ = now;
  }
}

void Connection::pump(detail::CallState& state, std::optional<Clock::time_point> deadline) {
  while (true) {
    if (!send_queued()) return finish();
    read_available();
    if (state.done()) return;
    auto now = Clock::now();
    keep_alive(now);
    if (state.done()) return;
    auto until = last_ping_ + heartbeat_;
    if (deadline) {
      if (now >= *deadline) return;
      until = std::min(until, *deadline);
    }
    auto timeout = std::chrono::ceil<std::chrono::milliseconds>(until - now);
    zmq::pollitem_t items[] = {{socket_.handle(), 0, ZMQ_POLLIN, 0},
                               {nullptr, wake_fd_, ZMQ_POLLIN, 0}};
    wire::poll(items, 2, std::max(timeout, std::chrono::milliseconds(0)));
    if (items[1].revents & ZMQ_POLLIN) {
      std::uint64_t count;
      [[maybe_unused]] auto n = ::read(wake_fd_, &count, sizeof count);
    }
  }
}

bool Connection::wait_for_reply(detail::CallState& state,
                                std::optional<Clock::time_point> deadline) {
  std::unique_lock lock(mu_);
  while (true) {
    if (state.done()) return true;
    if (finished_) {
      lock.unlock();  // finish() failed every call it knew; nothing more will come from here
      return state.wait_here(deadline);
    }
    if (take_socket()) {
      lock.unlock();
      try {
        pump(state, deadline);
      } catch (...) {
        give_back_socket();
        throw;
      }
      give_back_socket();
      return state.done();  // pump returns when the call is done or the deadline passed
    }
    if (deadline && Clock::now() >= *deadline) return false;
    // Another thread holds the socket: it completes this call or gives the socket back.
    if (deadline)
      socket_cv_.wait_until(lock, *deadline);
    else
      socket_cv_.wait(lock);
  }
}

void Connection::keeper_tick() {
  {
    std::lock_guard lock(mu_);
    if (finished_ || !take_socket()) return;  // the holder sends heartbeats itself
  }
  try {
    if (send_queued()) {
      read_available();
      keep_alive(Clock::now());
    } else {
      finish();
    }
  } catch (const std::exception& e) {
    log::warn("connection to ", address_, ": ", e.what());
  }
  give_back_socket();
}

void Connection::finish() {
  // Requests queued before close() are still sent (releases above all).
  std::vector<Outgoing> batch;
  {
    std::lock_guard lock(mu_);
    batch.swap(queue_);
  }
  for (auto& out : batch) transmit(out);
  wire::Encoder enc;
  enc.packer().pack_array(1);
  enc.packer().pack(static_cast<std::uint8_t>(Op::kBye));
  auto frames = wire::to_frames(enc);
  wire::send_frames(socket_, frames);
  fail_all([] { return std::make_exception_ptr(ConnectionError("connection closed")); });
  {
    std::lock_guard lock(mu_);
    finished_ = true;
  }
  socket_cv_.notify_all();
}

void Connection::close() {
  {
    std::unique_lock lock(mu_);
    if (!closing_) {
      closing_ = true;
      // A thread blocked in poll holding the socket finishes the connection when it wakes.
      std::uint64_t one = 1;
      [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);
    }
    socket_cv_.wait(lock, [&] { return finished_ || !socket_taken_; });
    if (!finished_) {
      socket_taken_ = true;
      lock.unlock();
      try {
        finish();
      } catch (const std::exception& e) {
        log::warn("closing the connection to ", address_, ": ", e.what());
      }
      give_back_socket();
    }
  }
  {
    std::lock_guard lock(keeper_signal_->mu);
    keeper_signal_->stop = true;
  }
  keeper_signal_->cv.notify_all();
  if (!keeper_.joinable()) return;
  if (keeper_.get_id() == std::this_thread::get_id())
    keeper_.detach();  // the keeper held the last reference; it touches nothing after this
  else
    keeper_.join();
}

void Connection::close_and_flush() {
  close();
  // Nobody touches the socket once the connection is finished.
  socket_.close();
  context_.close();  // returns once the queue is sent or the linger time has passed
}

void Connection::handle(std::shared_ptr<wire::Inbound> in) {
  heard_ = true;
  switch (in->op()) {
    case Op::kReply: {
      auto it = pending_.find(wire::as_u64(in->field(1), "request id"));
      if (it == pending_.end()) return;
      auto state = std::move(it->second);
      pending_.erase(it);
      state->complete(in->payload(2, 3));
      return;
    }
    case Op::kError: {
      std::uint64_t id = wire::as_u64(in->field(1), "request id");
      auto error = read_error(*in);
      if (id == 0) {
        log::warn("server at ", address_, " reported: ", error.type, ": ", error.message);
        if (error.kind == wire::kind::kNoSession || error.kind == wire::kind::kShutdown)
          fail_all([error] { return as_exception([&] { error.raise(); }); });
        return;
      }
      auto it = pending_.find(id);
      if (it == pending_.end()) return;
      auto state = std::move(it->second);
      pending_.erase(it);
      state->fail(as_exception([&] { error.raise(); }));
      return;
    }
    case Op::kPong:
      return;
    default:
      log::warn("unexpected message op ", static_cast<int>(in->op()), " from ", address_);
  }
}

void Connection::fail_all(std::function<std::exception_ptr()> make_error) {
  {
    std::lock_guard lock(mu_);
    if (!broken_) broken_ = make_error;
  }
  auto pending = std::move(pending_);
  pending_.clear();
  for (auto& [id, state] : pending) state->fail(make_error());
  notify_waiters();
}

/// The connections this process has open, so that a process ending through exit() (which runs
/// no destructor of a local BaseManager) still says goodbye on each: the server then releases
/// what the sessions held at once instead of after their ttl.
class OpenConnections {
 public:
  static void add(const std::shared_ptr<Connection>& connection) {
    auto& self = instance();
    std::lock_guard lock(self.mu_);
    std::erase_if(self.open_, [](const Entry& e) { return e.connection.expired(); });
    self.open_.push_back({connection, ::getpid()});
    if (!self.registered_) {
      std::atexit(&OpenConnections::close_all);
      self.registered_ = true;
    }
  }

 private:
  struct Entry {
    std::weak_ptr<Connection> connection;
    pid_t pid;  // a child made by fork() inherits the list, not the connections
  };
  // Never destroyed: the exit handler may run after static destructors have begun.
  static OpenConnections& instance() {
    static auto* self = new OpenConnections;
    return *self;
  }
  static void close_all() {
    std::vector<std::shared_ptr<Connection>> open;
    {
      auto& self = instance();
      std::lock_guard lock(self.mu_);
      for (const auto& e : self.open_)
        if (e.pid == ::getpid())
          if (auto c = e.connection.lock()) open.push_back(std::move(c));
      self.open_.clear();
    }
    for (auto& c : open) c->close_and_flush();
  }

  std::mutex mu_;
  std::vector<Entry> open_;
  bool registered_ = false;
};

}  // namespace

std::shared_ptr<detail::Channel> connect(const ConnectOptions& options) {
  auto connection = std::make_shared<Connection>(options);
  connection->start_keeper();
  OpenConnections::add(connection);
  return connection;
}

DynamicProxy server_proxy(const std::shared_ptr<detail::Channel>& channel) {
  return DynamicProxy(std::make_shared<detail::ObjectRef>(channel, wire::kServerObject, "server"));
}

}  // namespace zmanager
