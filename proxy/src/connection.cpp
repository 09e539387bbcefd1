// The client end of the protocol: one DEALER socket shared by the calling threads (see
// Connection). Replies are matched to requests by id, so any number of calls can be in flight
// and complete in any order.
#include "zmanager/connection.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <functional>
#include <optional>
#include <thread>
#include <unordered_map>
#include <utility>

#include "reply_spin.hpp"
#include "transport.hpp"
#include "zmanager/wire/log.hpp"
#include "zmanager/wire/protocol.hpp"
#include "zmanager/wire/recycling.hpp"

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

template <class E>
std::function<std::exception_ptr()> error_maker(std::string message) {
  return [message = std::move(message)] { return std::make_exception_ptr(E(message)); };
}

using IdMap = std::unordered_map<std::uint64_t, std::uint64_t>;

// Counts a thread among those waiting for a reply while it lives (Connection::waiting_threads_,
// which tells pump() whether it waits alone).
class CountedWaiter {
 public:
  explicit CountedWaiter(std::atomic<int>& count) : count_(count) {
    count_.fetch_add(1, std::memory_order_relaxed);
  }
  ~CountedWaiter() { count_.fetch_sub(1, std::memory_order_relaxed); }
  CountedWaiter(const CountedWaiter&) = delete;
  CountedWaiter& operator=(const CountedWaiter&) = delete;

 private:
  std::atomic<int>& count_;
};

// Repacks a value with the id of every object reference in it (an ext value, anywhere among
// the arguments) replaced by `map`'s.
void repack_mapped(const msgpack::object& o, msgpack::packer<msgpack::sbuffer>& pk,
                   const std::function<std::uint64_t(std::uint64_t)>& map) {
  switch (o.type) {
    case msgpack::type::ARRAY:
      pk.pack_array(o.via.array.size);
      for (std::uint32_t i = 0; i < o.via.array.size; ++i)
        repack_mapped(o.via.array.ptr[i], pk, map);
      return;
    case msgpack::type::MAP:
      pk.pack_map(o.via.map.size);
      for (std::uint32_t i = 0; i < o.via.map.size; ++i) {
        repack_mapped(o.via.map.ptr[i].key, pk, map);
        repack_mapped(o.via.map.ptr[i].val, pk, map);
      }
      return;
    case msgpack::type::EXT:
      if (o.via.ext.type() == wire::kExtRef) {
        auto ref = msgpack::unpack(o.via.ext.data(), o.via.ext.size);
        const msgpack::object& pair = ref.get();  // [object_id, typeid], written by pack_ref
        msgpack::sbuffer inner;
        msgpack::packer<msgpack::sbuffer> ipk(inner);
        ipk.pack_array(2);
        ipk.pack(map(pair.via.array.ptr[0].as<std::uint64_t>()));
        ipk.pack(pair.via.array.ptr[1]);
        pk.pack_ext(inner.size(), wire::kExtRef);
        pk.pack_ext_body(inner.data(), static_cast<std::uint32_t>(inner.size()));
        return;
      }
      [[fallthrough]];
    default:
      pk.pack(o);
  }
}

// A call encoded for the previous session, made fit for the new one: every object id it names
// (its target, references among its arguments) replaced by the id the object has now. Only
// objects found again by their shared name have one; a call naming any other is refused: its
// name for the object is returned, with the method.
std::optional<std::string> remap_call(wire::Frames& frames, const IdMap& moved) {
  const auto& body = frames.front();
  // The body is one this client encoded itself, so it is well formed.
  auto handle = msgpack::unpack(static_cast<const char*>(body.data()), body.size());
  const msgpack::object_array& call = handle.get().via.array;
  std::optional<std::string> stale;
  auto map = [&](std::uint64_t id) {
    if (id == wire::kServerObject) return id;
    auto it = moved.find(id);
    if (it != moved.end()) return it->second;
    if (!stale) stale = "object " + std::to_string(id);
    return id;
  };
  msgpack::sbuffer out;
  msgpack::packer<msgpack::sbuffer> pk(out);
  pk.pack_array(call.size);
  for (std::uint32_t i = 0; i < call.size; ++i) {
    // [op, request_id, object_id, method, args, refs, timeout_ms?] (docs/protocol.md)
    const msgpack::object& field = call.ptr[i];
    if (i == 2) {
      pk.pack(map(field.as<std::uint64_t>()));
    } else if (i == 4) {
      repack_mapped(field, pk, map);
    } else if (i == 5) {
      pk.pack_array(field.via.array.size);
      for (std::uint32_t j = 0; j < field.via.array.size; ++j)
        pk.pack(map(field.via.array.ptr[j].as<std::uint64_t>()));
    } else {
      pk.pack(field);
    }
  }
  if (stale) return *stale + " (called: " + call.ptr[3].as<std::string>() + ")";
  frames.front() = zmq::message_t(out.data(), out.size());
  return std::nullopt;
}

// Which thread may touch the socket. A ZeroMQ socket belongs to one thread at a time, and a
// hand-off to a dedicated I/O thread costs a wake-up on each side of every call (the biggest
// cost of a synchronous call on a small machine). So there is no such thread: the socket is a
// role that the calling threads take in turn (leader/followers). A thread sends its request
// itself when the socket is free; a thread waiting for a reply takes the socket and reads
// replies (completing other threads' calls too) until its own has arrived, then hands the
// socket back. Requests made while another thread holds the socket are queued for it, with an
// eventfd to wake it from its poll; a thread that is the only one waiting waits inside ZeroMQ
// instead, where nothing can wake it, for kMostWaitedAlone at most. A keeper thread takes the
// socket only while nobody else does, to send heartbeats and read what arrives for calls nobody is
// waiting on yet.
//
// The session. The first handshake happens in the constructor; later ones when the session is
// lost (docs/reliability.md, "Reconnecting"): the server answers `no_session` (it restarted, or
// ended the session), or nothing is heard from it within the session ttl. The handshake, the
// retries and the re-finding of shared objects are a state machine (`link_`) driven by
// whichever thread holds the socket, like everything else, so no thread is set aside for it.
// Requests made meanwhile wait in `held_`.
class Connection final : public detail::Channel {
 public:
  /// The most requests sent in one BATCH (the server takes up to 1024). Not more: a Batch
  /// sends when it holds this many, and with 64 calls in flight a batch of 64 left the server
  /// idle while the client read the replies and the client idle while the server ran the
  /// calls; two batches in flight overlap the two (A/B at 64 in flight, batches of 8/16/32/64:
  /// 400k/460k/530k/370k calls/s; at 256 in flight 32 and 64 were alike).
  static constexpr std::size_t kMostBatched = 32;
  /// How long a call held behind others in flight (see enqueue()) may wait for a thread to
  /// wait, or for 31 more calls, before the keeper sends it: the cost of the coalescing to a
  /// caller that sends a call and then does other work without waiting for anything.
  static constexpr std::chrono::microseconds kMostHeldFor{500};
  /// How long a thread waiting for its reply, while no other thread waits, waits inside the
  /// transport (Transport::wait_alone) before it waits where other threads can wake it. Most
  /// replies come within it, for fewer system calls; a request another thread makes meanwhile
  /// waits for it at most this long (or until the reply comes, if sooner).
  static constexpr std::chrono::milliseconds kMostWaitedAlone{1};

  explicit Connection(const ConnectOptions& options);
  ~Connection() override;
  void start_keeper();

  std::shared_ptr<detail::CallState> send(std::uint64_t request_id, wire::Encoder& enc,
                                          bool want_reply) override;
  std::shared_ptr<detail::CallState> send_and_wait(std::uint64_t request_id, wire::Encoder& enc,
                                                   std::optional<Clock::time_point> deadline,
                                                   detail::CallTimeout timeout) override;
  void release(std::uint64_t object, std::uint64_t session) override;
  void close() override;
  void hold_calls() override;
  void send_held_calls(bool stop_holding) override;
  /// close(), then waits until what it queued (the goodbye above all) has left, up to the linger
  /// time: at exit no destructor does, and the process would end with the goodbye unsent.
  void close_and_flush();
  bool wait_for_reply(detail::CallState& state, std::optional<Clock::time_point> deadline) override;
  CallTimeout default_call_timeout() const override { return call_timeout_; }
  bool sends_call_timeouts() const override { return server_version_.load() >= 2; }
  std::uint64_t session() const override { return session_.load(std::memory_order_acquire); }
  std::string stale_reason() const override;
  void track_shared(const std::shared_ptr<detail::ObjectRef>& ref) override;

 private:
  struct Outgoing {
    std::uint64_t request_id;
    wire::Frames frames;
    std::shared_ptr<detail::CallState> state;  // null for notifications
    std::uint64_t session;                     // of the references it names; 0: none
  };
  using PendingMap = std::unordered_map<std::uint64_t, Outgoing>;
  /// What the keeper waits on; shared with it so that it never keeps the connection alive.
  struct KeeperSignal {
    std::mutex mu;
    std::condition_variable cv;
    bool stop = false;
    bool hurry = false;  // calls are held: tick every kMostHeldFor, not every heartbeat
  };
  /// A `release` notification for one reference counted for `session`.
  static Outgoing release_message(std::uint64_t object, std::uint64_t session);
  enum class Link {
    kUp,           // a session is open
    kHandshaking,  // HELLO sent, waiting for CHALLENGE and WELCOME
    kResolving,    // a new session is open; finding the shared objects again
    kBackingOff,   // an attempt failed; the next one starts at next_attempt_
    kDown,         // given up (or closed): every call fails
  };
  /// A shared object being found again: `shared(name)` sent for `ref`.
  struct Resolving {
    std::weak_ptr<detail::ObjectRef> ref;
    std::uint64_t old_id;
    std::uint64_t old_session;
    std::optional<std::uint64_t> new_id;
    bool answered = false;
  };

  // Socket role. take_socket() must be called with mu_ held; the others by the role holder.
  bool take_socket();
  void give_back_socket();
  /// Wakes the thread holding the socket from its poll (any thread may call it).
  void wake_socket_holder();
  /// Sends `out` now if this thread can take the socket, else leaves it to the holder. With
  /// `keep_socket`, a thread that took the socket keeps it (true) for the wait it is about to do.
  bool enqueue(Outgoing out, bool keep_socket = false);
  /// Whether `out`, made while no thread holds the socket, waits in queue_ for the calls made
  /// after it instead of leaving at once (see enqueue()).
  bool holds_back(const Outgoing& out) const;
  /// Tells the keeper that calls are held, so that it sends them within kMostHeldFor.
  void hurry_keeper();
  /// Whether `out` is to be sent now: false when it was held for a session, failed or dropped.
  bool admit(Outgoing& out);
  void transmit(Outgoing& out);
  /// Sends one request, already admitted; a call is kept in pending_ until answered.
  void send_one(Outgoing& out);
  /// Sends `list` in order, those without blob frames together as BATCH messages when the
  /// server reads them (protocol version 4).
  void transmit_all(std::vector<Outgoing>& list);
  /// Sends the requests of a batch, already admitted: one message for them all.
  void send_batch(std::vector<Outgoing>& batch);
  void add_pending(Outgoing out);
  /// Removes an answered call from pending_; returns its state.
  std::shared_ptr<detail::CallState> take_pending(PendingMap::iterator it);
  /// Sends what other threads queued; false once the connection is closing.
  bool send_queued();
  /// With mu_ held, after queue_ changed or the connection began closing.
  void note_queue_locked() { queued_or_closing_.store(!queue_.empty() || closing_); }
  /// Reads and handles every message that has arrived; true if any completed a call.
  bool read_available();
  /// Heartbeats, liveness and the reconnection timers.
  void keep_alive(Clock::time_point now);
  /// When keep_alive() next has something to do.
  Clock::time_point next_wakeup() const;
  /// Serves the socket until `state` is done or `deadline` passes.
  void pump(detail::CallState& state, std::optional<Clock::time_point> deadline);
  /// pump(), by the thread that holds the socket, which it then gives back (also on an error).
  void pump_then_give_back(detail::CallState& state, std::optional<Clock::time_point> deadline);
  std::shared_ptr<detail::CallState> new_call_state() {
    return std::allocate_shared<detail::CallState>(wire::Recycling<detail::CallState>(),
                                                   weak_from_this());
  }
  /// The keeper's work: heartbeats and replies while no thread waits, and the calls held. True
  /// while calls are still being held (the keeper then ticks again within kMostHeldFor).
  bool keeper_tick();
  /// Flushes the queue, says goodbye and fails what is left: the end of the connection.
  void finish();
  void handle(std::shared_ptr<wire::Inbound> in);
  void handle_error(const wire::Inbound& in);
  /// The replies and errors of a BATCH (protocol version 3); true if any completed a call.
  bool handle_batch(std::shared_ptr<const wire::Inbound> batch);
  /// Fails every pending call, each with its own exception from `make_error` (an exception
  /// object is never shared between the threads that will catch it), and later calls alike.
  void fail_all(std::function<std::exception_ptr()> make_error);
  void notify_waiters();

  // The session (see the class comment). All run by the role holder.
  void open_socket();
  void send_hello(Clock::time_point deadline);
  void on_challenge(const wire::Inbound& in);
  void on_welcome(const wire::Inbound& in);
  /// The server refused the handshake: for good (wrong key, version) or for this attempt.
  void handshake_refused(std::function<std::exception_ptr()> make_error, bool final);
  void session_lost(const std::string& why);
  void attempt_failed();
  void session_opened(std::uint64_t epoch);
  bool on_resolved(std::uint64_t request_id, const wire::Inbound* reply);
  void link_up();
  /// Fails the calls sent on a session that is gone: they may or may not have run.
  void fail_in_flight(const std::string& why);
  /// Makes a request of an earlier session fit for this one, or fails or drops it.
  bool bring_up_to_date(Outgoing& out);

  const std::string address_;
  const std::string authkey_;
  const std::string name_;
  const std::chrono::milliseconds handshake_timeout_;
  const ReconnectOptions reconnect_;
  const CallTimeout call_timeout_;
  zmq::context_t context_{1};
  std::unique_ptr<detail::Transport> transport_;
  int wake_fd_ = -1;
  wire::Limits limits_;
  std::atomic<std::uint64_t> server_version_{1};  // from the CHALLENGE
  std::atomic<std::uint64_t> session_{0};         // 1 for the first, +1 per reconnection

  mutable std::mutex mu_;              // guards the fields below
  std::condition_variable socket_cv_;  // the socket was given back, or a call completed
  bool socket_taken_ = false;
  std::vector<Outgoing> queue_;  // for the thread holding the socket
  // Whether queue_ holds anything or the connection is closing: written under mu_, read
  // without it by the holder, whose every poll looked under the mutex for what it mostly
  // found empty. A request queued after the holder looked wakes it (wake_fd_), so it looks
  // again.
  std::atomic<bool> queued_or_closing_{false};
  // Threads asleep on socket_cv_ in wait_for_reply(), so that a completed call wakes nobody
  // (and takes no mutex) when none sleeps: see notify_waiters().
  std::atomic<int> socket_sleepers_{0};
  int holds_ = 0;                    // Batch scopes open: requests wait in queue_ unsent
  bool held_unsent_ = false;         // queue_ holds such requests and the holder was not woken
  std::size_t held_since_tick_ = 0;  // requests held behind calls in flight since the last tick
  bool keeper_hurrying_ = false;     // the keeper was told to hurry and has not stopped since
  bool closing_ = false;
  bool finished_ = false;
  std::function<std::exception_ptr()> broken_;  // makes the error of a broken connection
  std::string ended_because_;                   // why the previous session ended
  std::vector<std::weak_ptr<detail::ObjectRef>> shared_refs_;

  // Touched only by the thread holding the socket.
  PendingMap pending_;  // sent, not answered; kept to resend
  // Whether pending_ holds any call, for threads that do not hold the socket (enqueue()).
  std::atomic<bool> awaiting_replies_{false};
  // Threads in wait_for_reply(): with one, its pump() may wait alone (kMostWaitedAlone).
  std::atomic<int> waiting_threads_{0};
  // Nodes of answered calls, for the next calls: a node allocated per call showed in profiles.
  std::vector<PendingMap::node_type> spare_nodes_;
  std::vector<Outgoing> batch_;    // being gathered by transmit_all (kept for its capacity)
  wire::HeldBatch batch_message_;  // the BATCH send_batch() makes of it (kept for its buffer)
  detail::ReplySpin reply_spin_;   // whether pump() polls before it sleeps
  // Reading the clock for every message showed in profiles: messages set these flags, and the
  // times are taken once per poll in keep_alive().
  Clock::time_point last_heard_;
  Clock::time_point last_ping_;
  bool heard_ = false;  // a message arrived since keep_alive() last looked
  bool sent_ = false;   // a request went out since then (any request keeps the session alive)
  std::chrono::milliseconds heartbeat_{1000};  // fixed by each handshake
  std::chrono::milliseconds ttl_{10000};
  Link link_ = Link::kHandshaking;
  wire::Nonce client_nonce_{};
  bool auth_sent_ = false;
  Clock::time_point attempt_deadline_;
  Clock::time_point next_attempt_;
  Clock::time_point lost_at_;
  std::chrono::milliseconds delay_{0};
  std::string loss_;  // why the session was lost, for messages
  std::optional<std::function<std::exception_ptr()>> handshake_error_;  // the first handshake's
  std::uint64_t epoch_ = 0;
  std::vector<Outgoing> held_;    // made while there was no session
  std::vector<Outgoing> unsent_;  // refused by a server without our session: never run
  std::unordered_map<std::uint64_t, Resolving> resolving_;
  IdMap moved_;  // object ids of the previous session -> this one's, for shared objects

  std::shared_ptr<KeeperSignal> keeper_signal_ = std::make_shared<KeeperSignal>();
  std::thread keeper_;
};

Connection::Connection(const ConnectOptions& options)
    : address_(options.address),
      authkey_(options.authkey),
      name_(options.name),
      handshake_timeout_(options.timeout),
      reconnect_(options.reconnect),
      call_timeout_(options.call_timeout),
      reply_spin_(options.spin_before_sleep) {
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) throw ConnectionError("eventfd failed");
  open_socket();
  auto deadline = Clock::now() + handshake_timeout_;
  send_hello(deadline);
  while (link_ != Link::kUp) {
    if (handshake_error_) std::rethrow_exception((*handshake_error_)());
    auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0)
      throw ConnectionError("no answer from a zmanager server at '" + address_ + "'");
    transport_->wait(left, -1);
    read_available();
  }
}

void Connection::open_socket() {
  transport_.reset();  // what the old one still queues is for a lost session
  transport_ = detail::Transport::open(address_, context_);
}

void Connection::send_hello(Clock::time_point deadline) {
  client_nonce_ = wire::random_nonce();
  auth_sent_ = false;
  wire::Encoder enc;
  auto& pk = enc.packer();
  pk.pack_array(4);
  pk.pack(static_cast<std::uint8_t>(Op::kHello));
  pk.pack(wire::kProtocolVersion);
  pk.pack_bin(client_nonce_.size());
  pk.pack_bin_body(reinterpret_cast<const char*>(client_nonce_.data()), client_nonce_.size());
  pk.pack(name_);
  auto frames = wire::to_frames(enc);
  transport_->send(frames, false);
  link_ = Link::kHandshaking;
  attempt_deadline_ = deadline;
}

void Connection::on_challenge(const wire::Inbound& in) {
  if (link_ != Link::kHandshaking || auth_sent_) return;  // not an answer to our hello
  wire::Nonce server_nonce;
  if (!wire::read_nonce(in.field(2), server_nonce))
    return handshake_refused(
        error_maker<ProtocolError>("unexpected handshake reply from '" + address_ + "'"), true);
  server_version_ = wire::as_u64(in.field(1), "protocol version");
  bool server_proved = wire::equal_constant_time(
      in.field(3), wire::proof(authkey_, wire::kServerLabel, client_nonce_, server_nonce));
  // Answer even when the server's proof is wrong, so the server logs the failed attempt.
  wire::Mac mine = wire::proof(authkey_, wire::kClientLabel, server_nonce, client_nonce_);
  wire::Encoder enc;
  auto& pk = enc.packer();
  pk.pack_array(2);
  pk.pack(static_cast<std::uint8_t>(Op::kAuth));
  pk.pack_bin(mine.size());
  pk.pack_bin_body(reinterpret_cast<const char*>(mine.data()), mine.size());
  auto frames = wire::to_frames(enc);
  transport_->send(frames, false);
  auth_sent_ = true;
  if (server_proved) transport_->use_segments(server_version_.load());
  if (!server_proved)
    handshake_refused(
        error_maker<AuthenticationError>("the server at '" + address_ +
                                         "' did not prove it knows the authkey (the keys differ)"),
        true);
}

void Connection::on_welcome(const wire::Inbound& in) {
  if (link_ != Link::kHandshaking || !auth_sent_) return;
  heartbeat_ = std::chrono::milliseconds(wire::as_u64(in.field(2), "heartbeat"));
  ttl_ = std::chrono::milliseconds(wire::as_u64(in.field(3), "ttl"));
  if (heartbeat_.count() == 0) heartbeat_ = std::chrono::milliseconds(1000);
  // The epoch came with version 2's later servers; an older one's is 0 (told apart by nothing).
  std::uint64_t epoch = in.size() > 4 ? wire::as_u64(in.field(4), "server epoch") : 0;
  session_opened(epoch);
}

void Connection::handshake_refused(std::function<std::exception_ptr()> make_error, bool final) {
  if (session() == 0) {  // the first handshake: connect() raises it
    handshake_error_ = std::move(make_error);
  } else if (final) {
    log::error("cannot open a new session with ", address_, ": the server refused it for good");
    fail_all(std::move(make_error));
  } else {
    attempt_failed();
  }
}

void Connection::session_lost(const std::string& why) {
  if (link_ != Link::kUp) return;  // already reconnecting
  log::warn("lost the session with ", address_, ": ", why);
  if (reconnect_.budget.count() <= 0) {
    fail_all(error_maker<ConnectionError>("the server at '" + address_ + "' " + why));
    return;
  }
  loss_ = why;
  lost_at_ = Clock::now();
  delay_ = reconnect_.first_delay;
  // The first attempt goes on the same socket, behind what it still queues for a server that
  // is down: a server answers in order, so every call it refused unread (which never ran) is
  // known by the time its CHALLENGE comes, and only the calls it never answered are in doubt.
  // Later attempts each take a new socket, in case a hello was lost with a server.
  send_hello(lost_at_ + std::min(handshake_timeout_, reconnect_.budget));
}

void Connection::attempt_failed() {
  fail_in_flight("the connection to '" + address_ + "' was lost (" + loss_ + ")");
  resolving_.clear();
  link_ = Link::kBackingOff;
  next_attempt_ = Clock::now() + delay_;
  delay_ = std::min(delay_ * 2, reconnect_.max_delay);
}

void Connection::fail_in_flight(const std::string& why) {
  auto pending = std::move(pending_);
  pending_.clear();
  awaiting_replies_.store(false, std::memory_order_relaxed);
  for (auto& [id, out] : pending)
    out.state->fail(std::make_exception_ptr(
        ConnectionError(why + ": the call was in flight, so it may or may not have run; it is not "
                              "sent again")));
}

void Connection::session_opened(std::uint64_t epoch) {
  if (session() == 0) {
    epoch_ = epoch;
    link_up();
    return;
  }
  {
    std::lock_guard lock(mu_);
    ended_because_ = epoch != epoch_ ? "the server at '" + address_ + "' restarted"
                                     : "the server at '" + address_ + "' " + loss_;
  }
  epoch_ = epoch;
  // What the server never answered went to a session that is gone.
  fail_in_flight("the session with '" + address_ + "' ended (" + loss_ + ")");
  std::vector<std::shared_ptr<detail::ObjectRef>> shared;
  {
    std::lock_guard lock(mu_);
    std::erase_if(shared_refs_, [](const auto& w) { return w.expired(); });
    for (const auto& w : shared_refs_)
      if (auto ref = w.lock()) shared.push_back(std::move(ref));
  }
  for (const auto& ref : shared) {
    auto b = ref->binding();
    std::uint64_t request_id = next_request_id();
    wire::Encoder enc;
    detail::begin_call(enc, request_id, wire::kServerObject, "shared");
    enc.packer().pack_array(1);
    enc.packer().pack(ref->shared_name());
    detail::end_call(enc);
    auto frames = wire::to_frames(enc);
    transport_->send(frames, false);
    resolving_[request_id] = Resolving{ref, b.id, b.session, std::nullopt, false};
  }
  link_ = Link::kResolving;
  attempt_deadline_ = Clock::now() + handshake_timeout_;
  if (resolving_.empty()) link_up();
}

bool Connection::on_resolved(std::uint64_t request_id, const wire::Inbound* reply) {
  auto it = resolving_.find(request_id);
  if (it == resolving_.end()) return false;
  it->second.answered = true;
  if (reply) {
    auto payload = reply->payload(2, 3);
    if (payload.refs.size() == 1) it->second.new_id = payload.refs.front();
  }
  if (!it->second.new_id) {
    auto ref = it->second.ref.lock();
    log::warn("the server at ", address_, " no longer shares '",
              ref ? ref->shared_name() : std::string("?"), "': its proxies are stale");
  }
  if (std::all_of(resolving_.begin(), resolving_.end(),
                  [](const auto& r) { return r.second.answered; }))
    link_up();
  return true;
}

void Connection::link_up() {
  const std::uint64_t previous = session();
  const std::uint64_t next = previous + 1;
  moved_.clear();
  std::vector<Outgoing> releases;
  for (auto& [request_id, r] : resolving_) {
    if (!r.new_id) continue;
    if (auto ref = r.ref.lock()) {
      ref->rebind(*r.new_id, next);
      if (r.old_session == previous) moved_[r.old_id] = *r.new_id;
    } else {  // the proxies went meanwhile: give the new reference back
      releases.push_back(release_message(*r.new_id, next));
    }
  }
  resolving_.clear();
  session_.store(next, std::memory_order_release);
  link_ = Link::kUp;
  last_heard_ = last_ping_ = Clock::now();
  if (previous != 0) log::info("reconnected to ", address_, " (session ", next, ")");
  // Refused calls first (they were made first), then what was made while there was no session.
  auto again = std::move(unsent_);
  unsent_.clear();
  auto held = std::move(held_);
  held_.clear();
  for (auto* batch : {&releases, &again, &held})
    for (auto& out : *batch) transmit(out);
}

bool Connection::bring_up_to_date(Outgoing& out) {
  if (!out.state) return false;  // a release: the session it was for took its references along
  if (out.session + 1 == session()) {
    if (auto stale = remap_call(out.frames, moved_); !stale) {
      out.session = session();
      return true;
    } else {
      out.state->fail(
          std::make_exception_ptr(StaleProxyError("the proxy to " + *stale + stale_reason())));
      return false;
    }
  }
  out.state->fail(std::make_exception_ptr(
      StaleProxyError("the proxy this call was made through" + stale_reason())));
  return false;
}

std::string Connection::stale_reason() const {
  std::string because;
  {
    std::lock_guard lock(mu_);
    because = ended_because_;
  }
  return " belongs to an earlier session of this client, and that session has ended (" + because +
         "): what it held there was released. Make a new proxy (proxies from get_shared() find "
         "their object again on their own)";
}

void Connection::track_shared(const std::shared_ptr<detail::ObjectRef>& ref) {
  std::lock_guard lock(mu_);
  std::erase_if(shared_refs_, [](const auto& w) { return w.expired(); });
  shared_refs_.push_back(ref);
}

void Connection::start_keeper() {
  keeper_ = std::thread([weak = weak_from_this(), signal = keeper_signal_,
                         period = std::max(heartbeat_ / 2, std::chrono::milliseconds(1))] {
    bool hurrying = false;
    while (true) {
      {
        std::unique_lock lock(signal->mu);
        if (hurrying) {
          if (signal->cv.wait_for(lock, kMostHeldFor, [&] { return signal->stop; })) return;
        } else {
          signal->cv.wait_for(lock, period, [&] { return signal->stop || signal->hurry; });
          if (signal->stop) return;
          if (std::exchange(signal->hurry, false)) {
            hurrying = true;  // a call was just held: it may wait up to kMostHeldFor
            continue;
          }
        }
        signal->hurry = false;
      }
      // Held only for one tick: if it is the last reference, the connection ends here, and
      // close() sees that it runs on this thread.
      auto self = std::static_pointer_cast<Connection>(weak.lock());
      if (!self) return;
      hurrying = self->keeper_tick();
    }
  });
}

Connection::~Connection() {
  close();
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

bool Connection::enqueue(Outgoing out, bool keep_socket) {
  bool direct = false, wake = false, queued = false, held = false, hurry = false;
  {
    std::lock_guard lock(mu_);
    if (broken_ || closing_) {
      if (out.state)
        out.state->fail(broken_ ? broken_()
                                : std::make_exception_ptr(ConnectionError("connection closed")));
      return false;
    }
    if (holds_ > 0 || (!socket_taken_ && holds_back(out))) {
      // Held for a Batch, or behind calls in flight: it leaves with the requests made after
      // it, when a thread waits for a call, when the batch ends, as soon as a whole batch is
      // held, or (behind calls in flight) when the keeper sends it, within kMostHeldFor. A
      // thread that makes many calls at once (a pipeline) so sends them as one message each
      // kMostBatched: a ZeroMQ message and a read on the server each, not one per call, which
      // is most of what a call costs on either side. Nagle's algorithm in TCP holds small
      // writes while others are unacknowledged for the same reason.
      // Room for a whole batch at once: growing from empty cost a few reallocations (and moves
      // of what was held) per batch. A synchronous call is never held, and allocates nothing.
      if (queue_.capacity() == 0) queue_.reserve(kMostBatched);
      queue_.push_back(std::move(out));
      note_queue_locked();
      queued = true;
      if (holds_ == 0) {
        ++held_since_tick_;
        hurry = !std::exchange(keeper_hurrying_, true);
      }
      held = queue_.size() < kMostBatched;
      held_unsent_ = held;
      if (!held) {
        direct = take_socket();
        wake = !direct;
      }
    } else {
      direct = take_socket();
      if (!direct) {
        wake = queue_.empty();
        queue_.push_back(std::move(out));
        note_queue_locked();
      } else if (!queue_.empty()) {
        queue_.push_back(std::move(out));  // behind what is held, to keep the order
        queued = true;
      }
    }
  }
  if (hurry) hurry_keeper();
  if (held) return false;
  if (direct) {
    try {
      if (!queued) transmit(out);  // what is queued leaves in give_back_socket() (or pump())
    } catch (...) {
      give_back_socket();
      throw;
    }
    if (keep_socket) return true;
    give_back_socket();
  } else if (wake) {
    wake_socket_holder();
  }
  return false;
}

bool Connection::holds_back(const Outgoing& out) const {
  // Only what a BATCH can carry (no blob frames), and only while replies are awaited: a call
  // made with none in flight, a synchronous call above all, leaves at once.
  return out.frames.size() == 1 && awaiting_replies_.load(std::memory_order_relaxed) &&
         server_version_.load(std::memory_order_relaxed) >= 4;
}

void Connection::hurry_keeper() {
  {
    std::lock_guard lock(keeper_signal_->mu);
    keeper_signal_->hurry = true;
  }
  keeper_signal_->cv.notify_one();
}

std::shared_ptr<detail::CallState> Connection::send(std::uint64_t request_id, wire::Encoder& enc,
                                                    bool want_reply) {
  auto state = want_reply ? new_call_state() : nullptr;
  enqueue(Outgoing{request_id, wire::to_frames(enc), state, enc.session()});
  return state;
}

std::shared_ptr<detail::CallState> Connection::send_and_wait(
    std::uint64_t request_id, wire::Encoder& enc, std::optional<Clock::time_point> deadline,
    detail::CallTimeout timeout) {
  auto state = new_call_state();
  if (deadline) state->set_deadline(*deadline, timeout);
  const CountedWaiter waiting(waiting_threads_);  // from the start, as in wait_for_reply()
  // A thread that sends its call itself keeps the socket for the wait: giving it back and taking
  // it again cost two mutex pairs per synchronous call. Otherwise take() waits as for any call.
  if (enqueue(Outgoing{request_id, wire::to_frames(enc), state, enc.session()}, true))
    pump_then_give_back(
        *state, deadline ? std::optional(*deadline + detail::kDeadlineGrace) : std::nullopt);
  return state;
}

void Connection::release(std::uint64_t object, std::uint64_t session) {
  if (object == wire::kServerObject) return;
  if (session != 0 && session < this->session()) return;  // went with its session
  enqueue(release_message(object, session));
}

Connection::Outgoing Connection::release_message(std::uint64_t object, std::uint64_t session) {
  wire::Encoder enc;
  detail::begin_call(enc, 0, wire::kServerObject, "release");
  enc.packer().pack_array(1);
  enc.packer().pack_array(1);
  enc.packer().pack(object);
  detail::end_call(enc);
  return Outgoing{0, wire::to_frames(enc), nullptr, session};
}

void Connection::wake_socket_holder() {
  std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);
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
      held_unsent_ = false;
      note_queue_locked();
    }
    transmit_all(batch);
  }
  socket_cv_.notify_all();
}

bool Connection::admit(Outgoing& out) {
  if (link_ == Link::kDown) {
    if (out.state) {
      std::lock_guard lock(mu_);
      out.state->fail(broken_ ? broken_()
                              : std::make_exception_ptr(ConnectionError("connection closed")));
    }
    return false;
  }
  if (link_ != Link::kUp) {
    held_.push_back(std::move(out));
    return false;
  }
  if (out.session != 0 && out.session != session() && !bring_up_to_date(out)) return false;
  if (out.state && out.state->has_deadline() && out.state->past_deadline(Clock::now())) {
    out.state->fail(
        std::make_exception_ptr(TimeoutError("the call waited for a new session with '" + address_ +
                                             "' past its deadline and was never sent")));
    return false;
  }
  return true;
}

void Connection::transmit(Outgoing& out) {
  if (admit(out)) send_one(out);
}

void Connection::send_one(Outgoing& out) {
  // A call is kept until answered: a server that says it never got the call has it sent again.
  transport_->send(out.frames, /*keep=*/out.state != nullptr);
  if (out.state) add_pending(std::move(out));
  sent_ = true;
}

void Connection::transmit_all(std::vector<Outgoing>& list) {
  if (list.size() < 2 || server_version_.load(std::memory_order_relaxed) < 4) {
    for (auto& out : list) transmit(out);
    return;
  }
  batch_.clear();
  for (auto& out : list) {
    if (!admit(out)) continue;
    if (out.frames.size() == 1) {
      batch_.push_back(std::move(out));
      if (batch_.size() == kMostBatched) send_batch(batch_);
      continue;
    }
    send_batch(batch_);  // first, to keep the order
    batch_.push_back(std::move(out));
    send_batch(batch_);
  }
  send_batch(batch_);
}

void Connection::send_batch(std::vector<Outgoing>& batch) {
  if (batch.size() == 1) send_one(batch.front());
  if (batch.size() <= 1) {
    batch.clear();
    return;
  }
  for (auto& out : batch) batch_message_.add(out.frames.front().to_string_view());
  wire::Frames frames;
  frames.push_back(batch_message_.take());
  transport_->send(frames, false);
  // Calls are kept until answered, each on its own: one the server says it never got is sent
  // again alone.
  for (auto& out : batch)
    if (out.state) add_pending(std::move(out));
  batch.clear();
  sent_ = true;
}

void Connection::add_pending(Outgoing out) {
  awaiting_replies_.store(true, std::memory_order_relaxed);
  if (spare_nodes_.empty()) {
    pending_.emplace(out.request_id, std::move(out));
    return;
  }
  auto node = std::move(spare_nodes_.back());
  spare_nodes_.pop_back();
  node.key() = out.request_id;
  node.mapped() = std::move(out);
  pending_.insert(std::move(node));
}

std::shared_ptr<detail::CallState> Connection::take_pending(PendingMap::iterator it) {
  // Enough for a deep pipeline; a burst beyond it frees the rest.
  constexpr std::size_t kMostSpareNodes = 1024;
  auto node = pending_.extract(it);
  auto state = std::move(node.mapped().state);
  if (spare_nodes_.size() < kMostSpareNodes) {
    node.mapped().frames.clear();  // a large frame's buffer is not kept
    spare_nodes_.push_back(std::move(node));
  }
  return state;
}

bool Connection::send_queued() {
  if (!queued_or_closing_.load()) return true;
  std::vector<Outgoing> batch;
  {
    std::lock_guard lock(mu_);
    if (closing_) return false;
    batch.swap(queue_);
    held_unsent_ = false;
    note_queue_locked();
  }
  transmit_all(batch);
  return true;
}

bool Connection::read_available() {
  bool completed = false;
  while (auto frames = transport_->receive()) {
    try {
      auto in = wire::Inbound::parse(std::move(*frames), limits_);
      if (in->op() == Op::kBatch) {
        completed |= handle_batch(std::move(in));
      } else {
        completed |= in->op() == Op::kReply || in->op() == Op::kError;
        handle(std::move(in));
      }
    } catch (const std::exception& e) {
      log::warn("dropped a malformed message from ", address_, ": ", e.what());
    }
    // With no call left awaiting a reply (a synchronous call's came), whatever else arrived is
    // left to the next read: every wait looks for a waiting message before it sleeps, and a
    // read that finds nothing costs ZeroMQ a look at its mailbox, and the stream a system call.
    if (pending_.empty()) break;
  }
  awaiting_replies_.store(!pending_.empty(), std::memory_order_relaxed);
  if (completed) notify_waiters();
  // The same-host transport knows at once when the server has gone.
  if (auto why = transport_->take_break()) session_lost(*why);
  return completed;
}

void Connection::notify_waiters() {
  // The calls were marked done before this look (sequentially consistent, as the sleepers' count
  // and check are): either a sleeper is seen here, or it saw its call done before it slept.
  if (socket_sleepers_.load() == 0) return;
  // Taking the mutex orders this after a sleeper's check of its call, so the wake-up is not lost.
  { std::lock_guard lock(mu_); }
  socket_cv_.notify_all();
}

void Connection::keep_alive(Clock::time_point now) {
  if (std::exchange(heard_, false)) last_heard_ = now;
  if (std::exchange(sent_, false)) last_ping_ = now;
  switch (link_) {
    case Link::kUp:
      if (now - last_heard_ > ttl_) {
        session_lost("stopped answering (nothing heard within the session ttl of " +
                     std::to_string(ttl_.count()) + " ms)");
        break;
      }
      if (now >= last_ping_ + heartbeat_) {
        wire::Encoder enc;
        enc.packer().pack_array(1);
        enc.packer().pack(static_cast<std::uint8_t>(Op::kPing));
        auto frames = wire::to_frames(enc);
        transport_->send(frames, false);
        last_ping_ = now;
      }
      return;
    case Link::kHandshaking:
    case Link::kResolving:
      if (now >= attempt_deadline_) attempt_failed();
      break;
    case Link::kBackingOff:
      if (now >= next_attempt_) {
        open_socket();
        send_hello(std::min(now + handshake_timeout_, lost_at_ + reconnect_.budget));
      }
      break;
    case Link::kDown:
      return;
  }
  if (link_ != Link::kUp && link_ != Link::kDown && now >= lost_at_ + reconnect_.budget) {
    fail_all(error_maker<ConnectionError>(
        "the server at '" + address_ + "' " + loss_ + ", and no new session could be opened " +
        "within the reconnect budget of " + std::to_string(reconnect_.budget.count()) + " ms"));
  }
}

Clock::time_point Connection::next_wakeup() const {
  switch (link_) {
    case Link::kUp:
      return std::min(last_ping_ + heartbeat_, last_heard_ + ttl_ + std::chrono::milliseconds(1));
    case Link::kHandshaking:
    case Link::kResolving:
      return std::min(attempt_deadline_, lost_at_ + reconnect_.budget);
    case Link::kBackingOff:
      return std::min(next_attempt_, lost_at_ + reconnect_.budget);
    case Link::kDown:
      break;
  }
  return Clock::now() + heartbeat_;
}

void Connection::pump(detail::CallState& state, std::optional<Clock::time_point> deadline) {
  // Reads after waiting, not before: the wait returns at once when a message is already there,
  // and a read that finds nothing costs a system call (ZeroMQ checks its mailbox; the stream
  // reads its socket) for every synchronous call.
  const auto start = Clock::now();
  const auto poll_until =
      start + (transport_->worth_polling() ? reply_spin_.next() : std::chrono::microseconds(0));
  bool polling = poll_until > start;
  const auto alone_until = start + kMostWaitedAlone;
  while (true) {
    if (!send_queued()) return finish();
    if (state.done()) break;
    auto now = Clock::now();
    keep_alive(now);
    if (state.done()) break;
    if (polling && now >= poll_until) {
      reply_spin_.record(false);
      polling = false;
    }
    auto until = next_wakeup();
    if (deadline) {
      if (now >= *deadline) return;
      until = std::min(until, *deadline);
    }
    const auto timeout = polling ? std::chrono::milliseconds(0)
                                 : std::chrono::ceil<std::chrono::milliseconds>(until - now);
    const bool alone =
        !polling && now < alone_until && waiting_threads_.load(std::memory_order_relaxed) == 1 &&
        transport_->wait_alone(
            std::min(timeout, std::chrono::ceil<std::chrono::milliseconds>(alone_until - now)));
    if (!alone && transport_->wait(timeout, wake_fd_)) {
      std::uint64_t count;
      [[maybe_unused]] auto n = ::read(wake_fd_, &count, sizeof count);
    }
    read_available();
  }
  if (polling) reply_spin_.record(true);
}

void Connection::pump_then_give_back(detail::CallState& state,
                                     std::optional<Clock::time_point> deadline) {
  try {
    pump(state, deadline);
  } catch (...) {
    give_back_socket();
    throw;
  }
  give_back_socket();
}

bool Connection::wait_for_reply(detail::CallState& state,
                                std::optional<Clock::time_point> deadline) {
  const CountedWaiter waiting(waiting_threads_);
  std::unique_lock lock(mu_);
  while (true) {
    if (state.done()) return true;
    if (finished_) {
      lock.unlock();  // finish() failed every call it knew; nothing more will come from here
      return state.wait_here(deadline);
    }
    if (take_socket()) {
      lock.unlock();
      pump_then_give_back(state, deadline);
      return state.done();  // pump returns when the call is done or the deadline passed
    }
    if (std::exchange(held_unsent_, false)) {
      // Requests held for a Batch may include this call: the holder must send them.
      wake_socket_holder();
    }
    if (deadline && Clock::now() >= *deadline) return false;
    // Another thread holds the socket: it completes this call or gives the socket back.
    // Counted before the call is looked at again (see notify_waiters()).
    socket_sleepers_.fetch_add(1);
    if (!state.done()) {
      if (deadline)
        socket_cv_.wait_until(lock, *deadline);
      else
        socket_cv_.wait(lock);
    }
    socket_sleepers_.fetch_sub(1, std::memory_order_relaxed);
  }
}

bool Connection::keeper_tick() {
  bool hurrying = false;
  {
    std::lock_guard lock(mu_);
    hurrying = std::exchange(held_since_tick_, 0) > 0;
    keeper_hurrying_ = hurrying;
    if (finished_ || !take_socket()) return hurrying;  // the holder sends heartbeats itself
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
  return hurrying;
}

void Connection::finish() {
  // Requests queued before close() are still sent (releases above all).
  std::vector<Outgoing> batch;
  {
    std::lock_guard lock(mu_);
    batch.swap(queue_);
    note_queue_locked();
  }
  transmit_all(batch);
  wire::Encoder enc;
  enc.packer().pack_array(1);
  enc.packer().pack(static_cast<std::uint8_t>(Op::kBye));
  auto frames = wire::to_frames(enc);
  transport_->send(frames, false);
  fail_all(error_maker<ConnectionError>("connection closed"));
  {
    std::lock_guard lock(mu_);
    finished_ = true;
  }
  socket_cv_.notify_all();
}

void Connection::hold_calls() {
  std::lock_guard lock(mu_);
  ++holds_;
}

void Connection::send_held_calls(bool stop_holding) {
  bool direct = false;
  {
    std::lock_guard lock(mu_);
    if (stop_holding && holds_ > 0) --holds_;
    if (queue_.empty() || closing_ || finished_) return;
    held_unsent_ = false;
    direct = take_socket();
  }
  if (direct) {
    try {
      give_back_socket();                // sends what is queued
    } catch (const std::exception& e) {  // called from ~Batch: reported, not thrown
      log::warn("sending the calls of a batch to ", address_, ": ", e.what());
    }
  } else {
    wake_socket_holder();
  }
}

void Connection::close() {
  {
    std::unique_lock lock(mu_);
    if (!closing_) {
      closing_ = true;
      note_queue_locked();
      // A thread blocked in poll holding the socket finishes the connection when it wakes.
      wake_socket_holder();
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
  transport_->close_and_flush();
  context_.close();  // returns once ZeroMQ's queue is sent or the linger time has passed
}

void Connection::handle(std::shared_ptr<wire::Inbound> in) {
  heard_ = true;
  switch (in->op()) {
    case Op::kReply: {
      std::uint64_t id = wire::as_u64(in->field(1), "request id");
      if (link_ == Link::kResolving && on_resolved(id, in.get())) return;
      auto it = pending_.find(id);
      if (it == pending_.end()) return;
      auto state = take_pending(it);
      state->complete(in->payload(2, 3), session());
      return;
    }
    case Op::kError:
      return handle_error(*in);
    case Op::kChallenge:
      return on_challenge(*in);
    case Op::kWelcome:
      return on_welcome(*in);
    case Op::kPong:
      return;
    default:
      log::warn("unexpected message op ", static_cast<int>(in->op()), " from ", address_);
  }
}

bool Connection::handle_batch(std::shared_ptr<const wire::Inbound> batch) {
  const msgpack::object& list = batch->field(1);
  if (list.type != msgpack::type::ARRAY) throw ProtocolError("a batch holds no array");
  bool completed = false;
  for (std::uint32_t i = 0; i < list.via.array.size; ++i) {
    // Each as if it had come alone; one that is malformed costs only its own call.
    try {
      const msgpack::object& body = list.via.array.ptr[i];
      if (body.type != msgpack::type::BIN) throw ProtocolError("a batched message is not bin");
      auto in = wire::Inbound::parse_batched(batch, {body.via.bin.ptr, body.via.bin.size}, limits_);
      if (in->op() != Op::kReply && in->op() != Op::kError)
        throw ProtocolError("a batch carries only replies and errors");
      completed = true;
      handle(std::move(in));
    } catch (const std::exception& e) {
      log::warn("dropped a malformed message of a batch from ", address_, ": ", e.what());
    }
  }
  return completed;
}

void Connection::handle_error(const wire::Inbound& in) {
  std::uint64_t id = wire::as_u64(in.field(1), "request id");
  auto error = read_error(in);
  auto make_error = [error] { return as_exception([&] { error.raise(); }); };
  const bool no_session = error.kind == wire::kind::kNoSession;
  if (id == 0) {
    if (link_ == Link::kHandshaking) {
      // A refused ping or release sent before our hello says nothing about the handshake.
      if (!no_session)
        handshake_refused(make_error,
                          error.kind == wire::kind::kAuth || error.kind == wire::kind::kVersion);
      return;
    }
    log::warn("server at ", address_, " reported: ", error.type, ": ", error.message);
    if (no_session || error.kind == wire::kind::kShutdown)
      session_lost("no longer knew this client's session");
    return;
  }
  if (link_ == Link::kResolving && on_resolved(id, nullptr)) return;
  auto it = pending_.find(id);
  if (it == pending_.end()) return;
  if (no_session && reconnect_.budget.count() > 0) {
    // Refused unread: it never ran, so it goes again on the new session.
    unsent_.push_back(std::move(it->second));
    pending_.erase(it);
    session_lost("no longer knew this client's session");
    return;
  }
  auto state = std::move(it->second.state);
  pending_.erase(it);
  state->fail(make_error());
  if (no_session) session_lost(error.message);
}

void Connection::fail_all(std::function<std::exception_ptr()> make_error) {
  {
    std::lock_guard lock(mu_);
    if (!broken_) broken_ = make_error;
  }
  link_ = Link::kDown;
  auto pending = std::move(pending_);
  pending_.clear();
  awaiting_replies_.store(false, std::memory_order_relaxed);
  for (auto& [id, out] : pending) out.state->fail(make_error());
  for (auto* list : {&held_, &unsent_}) {
    for (auto& out : *list)
      if (out.state) out.state->fail(make_error());
    list->clear();
  }
  resolving_.clear();
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
