// The client end of the protocol: one DEALER socket owned by one I/O thread. User threads hand
// it encoded requests through a queue and an eventfd; it matches replies to requests by id, so
// any number of calls can be in flight and complete in any order.
#include "zmanager/connection.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <thread>
#include <unordered_map>

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

class Connection final : public detail::Channel {
 public:
  explicit Connection(const ConnectOptions& options);
  ~Connection() override;

  std::shared_ptr<detail::CallState> send(std::uint64_t request_id, wire::Encoder& enc,
                                          bool want_reply) override;
  void release(std::uint64_t object) override;
  void close() override;

 private:
  struct Outgoing {
    std::uint64_t request_id;
    wire::Frames frames;
    std::shared_ptr<detail::CallState> state;  // null for notifications
  };

  void handshake(const ConnectOptions& options);
  std::shared_ptr<wire::Inbound> recv_handshake(Clock::time_point deadline);
  void run();
  void drain_queue();
  void handle(std::shared_ptr<wire::Inbound> in);
  /// Fails every pending call, each with its own exception from `make_error` (an exception
  /// object is never shared between the threads that will catch it), and later calls alike.
  void fail_all(std::function<std::exception_ptr()> make_error);
  void enqueue(Outgoing out);

  std::string address_;
  zmq::context_t context_{1};
  zmq::socket_t socket_{context_, zmq::socket_type::dealer};
  int wake_fd_ = -1;
  wire::Limits limits_;

  std::mutex mu_;  // guards queue_, closing_, broken_
  std::vector<Outgoing> queue_;
  bool closing_ = false;
  std::function<std::exception_ptr()> broken_;  // makes the error of a broken connection

  // Owned by the I/O thread.
  std::unordered_map<std::uint64_t, std::shared_ptr<detail::CallState>> pending_;
  std::chrono::milliseconds heartbeat_{1000};
  std::chrono::milliseconds ttl_{10000};
  Clock::time_point last_heard_;
  Clock::time_point last_ping_;

  std::thread io_;
};

Connection::Connection(const ConnectOptions& options) : address_(options.address) {
  socket_.set(zmq::sockopt::linger, 200);
  socket_.set(zmq::sockopt::sndhwm, 0);  // flow is bounded by the calls in flight, not by drops
  socket_.set(zmq::sockopt::rcvhwm, 0);
  // Not `immediate`: requests queue on the pipe while a connection is (re)established instead
  // of blocking the I/O thread; a server that never answers is caught by the session ttl.
  try {
    socket_.connect(options.address);
  } catch (const zmq::error_t& e) {
    throw ConnectionError("cannot connect to '" + options.address + "': " + e.what());
  }
  handshake(options);
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) throw ConnectionError("eventfd failed");
  last_heard_ = last_ping_ = Clock::now();
  io_ = std::thread([this] { run(); });
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
  bool wake;
  {
    std::lock_guard lock(mu_);
    if (broken_ || closing_) {
      if (out.state)
        out.state->fail(broken_ ? broken_()
                                : std::make_exception_ptr(ConnectionError("connection closed")));
      return;
    }
    wake = queue_.empty();
    queue_.push_back(std::move(out));
  }
  if (wake) {
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

void Connection::close() {
  {
    std::lock_guard lock(mu_);
    if (closing_) return;
    closing_ = true;
  }
  if (!io_.joinable()) return;
  std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);
  if (io_.get_id() == std::this_thread::get_id())
    io_.detach();  // the last reference went away inside a completion on the I/O thread
  else
    io_.join();
}

void Connection::drain_queue() {
  std::uint64_t count;
  [[maybe_unused]] auto n = ::read(wake_fd_, &count, sizeof count);
  std::vector<Outgoing> batch;
  {
    std::lock_guard lock(mu_);
    batch.swap(queue_);
  }
  for (auto& out : batch) {
    if (out.state) pending_.emplace(out.request_id, std::move(out.state));
    wire::send_frames(socket_, out.frames);
  }
  if (!batch.empty()) last_ping_ = Clock::now();  // any request keeps the session alive
}

void Connection::handle(std::shared_ptr<wire::Inbound> in) {
  last_heard_ = Clock::now();
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
}

void Connection::run() {
  while (true) {
    auto now = Clock::now();
    auto next_ping = last_ping_ + heartbeat_;
    auto timeout = std::chrono::duration_cast<std::chrono::milliseconds>(next_ping - now);
    zmq::pollitem_t items[] = {{socket_.handle(), 0, ZMQ_POLLIN, 0},
                               {nullptr, wake_fd_, ZMQ_POLLIN, 0}};
    wire::poll(items, 2, std::max(timeout, std::chrono::milliseconds(0)));
    if (items[1].revents & ZMQ_POLLIN) drain_queue();
    if (items[0].revents & ZMQ_POLLIN) {
      while (auto frames = wire::recv_frames(socket_)) {
        try {
          handle(wire::Inbound::parse(std::move(*frames), limits_));
        } catch (const std::exception& e) {
          log::warn("dropped a malformed message from ", address_, ": ", e.what());
        }
      }
    }
    now = Clock::now();
    bool closing;
    {
      std::lock_guard lock(mu_);
      closing = closing_ && queue_.empty();
    }
    if (closing) {
      wire::Encoder enc;
      enc.packer().pack_array(1);
      enc.packer().pack(static_cast<std::uint8_t>(Op::kBye));
      auto frames = wire::to_frames(enc);
      wire::send_frames(socket_, frames);
      fail_all([] { return std::make_exception_ptr(ConnectionError("connection closed")); });
      return;
    }
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
}

}  // namespace

std::shared_ptr<detail::Channel> connect(const ConnectOptions& options) {
  return std::make_shared<Connection>(options);
}

DynamicProxy server_proxy(const std::shared_ptr<detail::Channel>& channel) {
  return DynamicProxy(std::make_shared<detail::ObjectRef>(channel, wire::kServerObject, "server"));
}

}  // namespace zmanager
