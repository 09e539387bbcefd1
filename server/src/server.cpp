// The server: the threads of the pool take turns reading the ROUTER socket (handshakes,
// sessions, heartbeats, routing; one thread at a time, see serve()); methods run on the pool,
// one at a time per object, and the thread that finishes a call sends its reply itself (the
// socket is shared under a mutex).
// Nothing here waits for a client: a call that must wait is a Responder kept by its object,
// answered when another call makes it possible.
#include "zmanager/server.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>
#include <queue>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

#include "object_table.hpp"
#include "stream_listener.hpp"
#include "zmanager/wire/log.hpp"
#include "zmanager/wire/protocol.hpp"
#include "zmanager/wire/recycling.hpp"
#include "zmq_segments.hpp"

namespace zmanager {

using server::kInFlightOwner;
using server::kLocalOwner;
using server::kPinnedOwner;
using server::Object;
using server::OwnerId;
using wire::Op;
using Clock = std::chrono::steady_clock;

namespace {

wire::Frames encode_error(std::uint64_t request_id, const wire::WireError& error) {
  wire::Encoder enc;
  auto& pk = enc.packer();
  pk.pack_array(3);
  pk.pack(static_cast<std::uint8_t>(Op::kError));
  pk.pack(request_id);
  pk.pack(error);
  return wire::to_frames(enc);
}

std::string_view kind_of(const std::exception& e) {
  if (dynamic_cast<const LimitError*>(&e)) return wire::kind::kLimit;
  if (dynamic_cast<const ProtocolError*>(&e)) return wire::kind::kBadRequest;
  return wire::kind::kRaised;
}

wire::WireError describe(std::exception_ptr error, std::string method, std::string object) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return wire::WireError::from(e, kind_of(e), std::move(method), std::move(object));
  } catch (...) {
    return wire::WireError{std::string(wire::kind::kRaised), "unknown", "a non-standard exception",
                           std::move(method), std::move(object)};
  }
}

// Written by the SIGINT/SIGTERM handler of the server that is serving.
std::atomic<int> signal_write_fd{-1};
extern "C" void on_stop_signal(int) {
  int fd = signal_write_fd.load();
  if (fd >= 0) {
    char c = 1;
    [[maybe_unused]] auto n = ::write(fd, &c, 1);
  }
}

/// Wakes the polling thread: a new earliest timer, a stop request, or a message that
/// a worker's send noticed on the socket (see Server::Impl::send_now).
class Waker {
 public:
  Waker() : fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
    if (fd_ < 0) throw Error("eventfd failed");
  }
  ~Waker() { ::close(fd_); }
  Waker(const Waker&) = delete;
  Waker& operator=(const Waker&) = delete;
  int fd() const { return fd_; }
  void wake() {
    // Under load many threads would wake the poller for every reply they send: once is enough
    // until the poller has seen it.
    if (pending_.exchange(true)) return;
    std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(fd_, &one, sizeof one);
  }
  /// Called by the poller when the eventfd polled readable, before it reads the socket, the
  /// timers and the stop flag: a wake() skipped meanwhile asked for nothing that step misses.
  /// (Cleared in the other order, a wake() between the two would be read here and leave the
  /// flag set with nothing to clear it.)
  void clear() {
    std::uint64_t count;
    [[maybe_unused]] auto n = ::read(fd_, &count, sizeof count);
    pending_.store(false);
  }

 private:
  int fd_;
  std::atomic<bool> pending_{false};
};

/// A body that starts [6, ...] or [7, ...] (REPLY, ERROR), the messages a BATCH may carry.
bool is_reply_or_error(const zmq::message_t& body) {
  const auto* p = static_cast<const std::uint8_t*>(body.data());
  return body.size() >= 2 && (p[0] & 0xf0) == 0x90 &&
         (p[1] == static_cast<std::uint8_t>(Op::kReply) ||
          p[1] == static_cast<std::uint8_t>(Op::kError));
}

/// The descriptors a poll step waits on, in one epoll set: the ROUTER's, the waker, the stop
/// signal's pipe, and the same-host transport's listener and connections (their keys below
/// StreamListener::kFirstForeignKey). One epoll_wait per step is the only wait, whatever is
/// ready.
class PollSet {
 public:
  static constexpr std::uint64_t kRouter = server::StreamListener::kFirstForeignKey;
  static constexpr std::uint64_t kWaker = kRouter + 1;
  static constexpr std::uint64_t kSignal = kRouter + 2;

  PollSet() : fd_(::epoll_create1(EPOLL_CLOEXEC)) {
    if (fd_ < 0) throw Error("epoll_create1 failed");
  }
  ~PollSet() { ::close(fd_); }
  PollSet(const PollSet&) = delete;
  PollSet& operator=(const PollSet&) = delete;
  int fd() const { return fd_; }
  void watch(int fd, std::uint64_t key) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = key;
    if (::epoll_ctl(fd_, EPOLL_CTL_ADD, fd, &ev) != 0 &&
        (errno != EEXIST || ::epoll_ctl(fd_, EPOLL_CTL_MOD, fd, &ev) != 0))
      throw Error(std::string("epoll_ctl failed: ") + std::strerror(errno));
  }
  void forget(int fd) { ::epoll_ctl(fd_, EPOLL_CTL_DEL, fd, nullptr); }

 private:
  int fd_;
};

struct RefReply {
  std::uint64_t id;
  std::string type;
  // A reference held while replying (create), dropped once the reply has counted the caller's
  // own and before the reply is sent: dropped after, a client acting on the reply at once (a
  // release, then stats()) could find the object still counted while the replying thread had
  // not yet got back to drop it.
  server::ObjectTable* held_in_flight = nullptr;
  mutable bool hold_dropped = false;
};
void pack_ref_reply(wire::Encoder& enc, const void* value) {
  const auto& r = *static_cast<const RefReply*>(value);
  detail::pack_ref(enc.packer(), r.id, r.type);  // counts the caller's reference
  if (r.held_in_flight && !r.hold_dropped) {
    r.hold_dropped = true;
    r.held_in_flight->decref(server::kInFlightOwner, r.id);
  }
}

}  // namespace

struct Server::Impl : std::enable_shared_from_this<Server::Impl> {
  Impl(Registry reg, ServerOptions opts);
  ~Impl();

  // ---- references crossing the wire ----
  /// Counts references written into a reply for the session that receives it.
  class ExportHooks : public wire::RefHooks {
   public:
    ExportHooks(Impl& s, OwnerId owner) : server(s), owner(owner) {}
    void on_export(std::uint64_t id) override {
      server.table.incref(owner, id);
      exported.push_back(id);
    }
    std::shared_ptr<detail::ObjectRef> on_import(std::uint64_t, std::string_view) override {
      throw ProtocolError("a reply cannot import references");
    }
    std::pair<std::uint64_t, std::string> export_object(
        std::shared_ptr<void> object, const detail::DispatchTable& table) override {
      std::string type = server.type_id_for(table);
      auto obj = server.table.find_or_add(
          type, std::move(object),
          std::shared_ptr<const detail::DispatchTable>(std::shared_ptr<void>(), &table));
      held.push_back(obj);  // keeps a new object alive until the reply's reference counts it
      return {obj->id, obj->type_id};
    }
    void rollback() {
      for (auto id : exported) server.table.decref(owner, id);
      exported.clear();
    }
    Impl& server;
    OwnerId owner;
    std::vector<std::uint64_t> exported;
    std::vector<std::shared_ptr<Object>> held;
  };

  /// Turns references in a request into proxies held by the server itself.
  class RequestHooks : public wire::RefHooks {
   public:
    explicit RequestHooks(Impl& s) : server(s) {}
    std::shared_ptr<detail::ObjectRef> on_import(std::uint64_t id, std::string_view type) override {
      server.table.incref(kLocalOwner, id);
      return std::make_shared<detail::ObjectRef>(server.local, id, std::string(type));
    }
    Impl& server;
  };

  /// What a session's reply targets share with it (they outlive it when parked).
  struct SessionState {
    // Cleared when the session ends; calls it left parked in objects can tell.
    std::atomic<bool> open{true};
    // Its calls parked in objects now (max_waiters_per_session).
    std::atomic<std::size_t> parked{0};
  };

  /// A reply target that encodes the reply with the receiving session's references counted.
  class Target : public detail::ReplyTarget {
   public:
    /// `object`: the id of the object called, for error descriptions; none for calls made
    /// inside the server.
    Target(std::weak_ptr<Impl> s, OwnerId owner, std::uint64_t request_id, std::string_view method,
           std::optional<std::uint64_t> object)
        : server_(std::move(s)),
          owner_(owner),
          request_id_(request_id),
          method_(method),
          object_(object) {}
    ~Target() override {
      if (!done_.load()) fail(std::make_exception_ptr(RuntimeError("the call was dropped")));
    }
    std::string_view method() const override { return method_; }
    std::uint64_t caller() const override { return owner_; }
    /// A call already answered (by its deadline, say) can be handed nothing more.
    bool caller_alive() const final { return !done_.load() && session_alive(); }
    bool answered() const { return done_.load(); }

    bool reply(PackFn pack, const void* value, Lifetime lifetime = Lifetime::kBorrowed) override {
      if (done_.exchange(true)) return false;
      uncount_parked();
      if (!session_alive()) return false;  // nobody left to receive it
      auto s = server_.lock();
      if (!s || request_id_ == 0) return true;
      ExportHooks hooks(*s, owner_);
      wire::Frames frames;
      try {
        wire::Encoder enc(&hooks);
        enc.share_unshared_blobs(lifetime == Lifetime::kTemporary);
        auto& pk = enc.packer();
        pk.pack_array(4);
        pk.pack(static_cast<std::uint8_t>(Op::kReply));
        pk.pack(request_id_);
        pack(enc, value);
        pk.pack(enc.refs());
        if (send_encoded(*s, enc)) return true;
        frames = wire::to_frames(enc);
      } catch (...) {
        hooks.rollback();
        ++s->errors;
        frames = encode_error(request_id_, describe_error(std::current_exception()));
      }
      deliver(*s, std::move(frames));
      return true;
    }

    bool fail(std::exception_ptr error) override {
      if (done_.exchange(true)) return false;
      uncount_parked();
      auto s = server_.lock();
      if (!s || request_id_ == 0) return true;
      ++s->errors;
      deliver(*s, encode_error(request_id_, describe_error(std::move(error))));
      return true;
    }

    /// Called once the method has returned without answering: the call now waits in its
    /// object, and counts against its session's bound on parked calls until it is answered.
    /// False (the call failed with LimitError, counted in `refusals`) if the session is over
    /// its bound.
    bool park(std::size_t limit, std::atomic<std::uint64_t>& refusals) {
      auto* parked = parked_counter();
      if (!parked) return true;
      if (parked->fetch_add(1) >= limit) {
        --*parked;
        ++refusals;  // before the answer: a client reading stats() after it must see it
        fail(std::make_exception_ptr(
            LimitError("this session already has " + std::to_string(limit) +
                       " calls waiting on the server, its limit (max_waiters_per_session)")));
        return false;
      }
      counted_.store(true);
      if (done_.load()) uncount_parked();  // answered meanwhile, by another thread
      return true;
    }

   protected:
    virtual void deliver(Impl& s, wire::Frames frames) = 0;
    /// Sends a reply as encoded, without making frames of it first; false if this target
    /// cannot (deliver() is then given its frames).
    virtual bool send_encoded(Impl& /*s*/, wire::Encoder& /*enc*/) { return false; }
    virtual bool session_alive() const { return true; }
    virtual std::atomic<std::size_t>* parked_counter() const { return nullptr; }

   private:
    std::weak_ptr<Impl> server_;
    OwnerId owner_;
    std::uint64_t request_id_;
    std::string method_;
    std::optional<std::uint64_t> object_;
    std::atomic<bool> done_{false};
    std::atomic<bool> counted_{false};  // counted in parked_counter(), not yet uncounted

    void uncount_parked() {
      if (counted_.exchange(false)) --*parked_counter();
    }
    wire::WireError describe_error(std::exception_ptr error) const {
      return describe(std::move(error), method_, object_ ? std::to_string(*object_) : "");
    }
  };

  class RemoteTarget final : public Target {
   public:
    RemoteTarget(std::weak_ptr<Impl> s, const std::string& routing, OwnerId owner,
                 std::shared_ptr<SessionState> session, std::uint64_t request_id,
                 std::string_view method, std::uint64_t object)
        : Target(std::move(s), owner, request_id, method, object),
          routing_(routing),
          session_(std::move(session)) {}

   protected:
    bool session_alive() const override { return session_->open.load(); }
    std::atomic<std::size_t>* parked_counter() const override { return &session_->parked; }
    void deliver(Impl& s, wire::Frames frames) override {
      // A call left parked by an ended session is answered by being dropped: nobody would read
      // the reply (and a reconnecting peer with the same routing id must not get it).
      if (!session_->open.load()) return;
      s.send_now(routing_, std::move(frames));
    }
    bool send_encoded(Impl& s, wire::Encoder& enc) override {
      if (session_->open.load()) s.send_reply(routing_, enc);
      return true;
    }

   private:
    std::string routing_;
    std::shared_ptr<SessionState> session_;
  };

  class LocalTarget final : public Target {
   public:
    LocalTarget(std::weak_ptr<Impl> s, std::shared_ptr<detail::CallState> state,
                std::uint64_t request_id, std::string_view method,
                std::optional<std::uint64_t> object)
        : Target(std::move(s), kLocalOwner, request_id, method, object), state_(std::move(state)) {}

   protected:
    // The same bytes a remote client would get, so that local and remote callers decode alike.
    void deliver(Impl& s, wire::Frames frames) override {
      if (!state_) return;
      // The error is handed over after its catch block has ended, so that this thread keeps no
      // reference to an exception the caller's thread will own (and destroy).
      std::exception_ptr error;
      try {
        auto in = wire::Inbound::parse(std::move(frames), s.limits);
        if (in->op() == Op::kReply) {
          state_->complete(in->payload(2, 3));
          return;
        }
        wire::WireError e;
        in->field(2).convert(e);
        e.raise();
      } catch (...) {
        error = std::current_exception();
      }
      state_->fail(std::move(error));
    }

   private:
    std::shared_ptr<detail::CallState> state_;
  };

  /// Proxies held inside the server (method arguments, objects in containers) call through this.
  class LocalChannel final : public detail::Channel {
   public:
    explicit LocalChannel(std::weak_ptr<Impl> s) : server_(std::move(s)) {}
    std::shared_ptr<detail::CallState> send(std::uint64_t request_id, wire::Encoder& enc,
                                            bool want_reply) override {
      auto state = want_reply ? std::make_shared<detail::CallState>(weak_from_this()) : nullptr;
      auto s = server_.lock();
      if (!s) {
        if (state) state->fail(std::make_exception_ptr(ConnectionError("the server has stopped")));
        return state;
      }
      try {
        auto in = wire::Inbound::parse(wire::to_frames(enc), s->limits);
        std::string method = wire::as_string(in->field(3), "method");
        auto target = std::make_shared<LocalTarget>(server_, state, want_reply ? request_id : 0,
                                                    method, std::nullopt);
        s->dispatch(std::move(in), nullptr, std::move(target));
      } catch (...) {
        if (state) state->fail(std::current_exception());
      }
      return state;
    }
    void release(std::uint64_t object, std::uint64_t /*session*/) override {
      if (object == wire::kServerObject) return;
      if (auto s = server_.lock()) s->table.decref(kLocalOwner, object);
    }
    std::shared_ptr<void> local_instance(std::uint64_t id, const std::type_info& type) override {
      auto s = server_.lock();
      if (!s) return nullptr;
      auto obj = s->table.get(id);
      if (!obj || !obj->table->type || *obj->table->type != type) return nullptr;
      return obj->instance;
    }

   private:
    std::weak_ptr<Impl> server_;
  };

  /// Timers for objects: kept for the polling thread, whose poll wakes for the earliest one; a
  /// due task runs on its object's strand.
  struct Timer {
    Clock::time_point when;
    std::uint64_t seq;
    std::weak_ptr<Object> object;
    std::function<void()> task;
    bool operator>(const Timer& o) const { return std::tie(when, seq) > std::tie(o.when, o.seq); }
  };
  class Services final : public detail::ObjectServices {
   public:
    Services(Impl& s, std::weak_ptr<Object> obj) : server(s), object(std::move(obj)) {}
    void schedule(Clock::time_point when, std::function<void()> task) override {
      server.add_timer(Timer{when, 0, object, std::move(task)});
    }
    Impl& server;
    std::weak_ptr<Object> object;
  };
  void add_timer(Timer timer);
  /// Posts the due timers' tasks; returns how long until the next one (or `cap`).
  std::chrono::milliseconds run_timers(Clock::time_point now, std::chrono::milliseconds cap);

  // ---- sessions ----
  struct Session {
    OwnerId owner;
    Clock::time_point last_seen;
    std::string name;
    // Shared with the reply targets of its calls.
    std::shared_ptr<SessionState> state = std::make_shared<SessionState>();
    // The objects with an on_session_end hook that this session called: told when it ends.
    std::unordered_map<std::uint64_t, std::weak_ptr<Object>> watched;
    std::size_t prune_at = 64;  // watched entries of destroyed objects are dropped past this
  };
  /// Records that `session` called `obj`, if the object wants to know when sessions end.
  static void watch(Session& session, const std::shared_ptr<Object>& obj);
  struct Handshake {
    std::uint64_t version = 1;  // the protocol version the client's HELLO said
    wire::Nonce client_nonce;
    wire::Nonce server_nonce;
    Clock::time_point started;
    std::string client_name;  // as the client introduced itself, for the logs
  };

  void start();
  void serve();
  /// A message read, and the peer it came from: its frames, or a BATCH whose messages are
  /// being handled one by one and the index of the next.
  struct Received {
    std::string routing;
    wire::Frames frames;
    std::shared_ptr<const wire::Inbound> batch;
    std::uint32_t next = 0;
  };
  /// Handles the message at the head of the inbox (the next message of a BATCH there).
  void handle_next();
  /// `body` is the message's own frame, or, when `batch` is not null, its bin in the batch.
  void handle(const std::string& routing, wire::Frames frames,
              std::shared_ptr<const wire::Inbound> batch, std::string_view body);
  void handle_message(const std::string& routing, std::shared_ptr<wire::Inbound> in, bool batched);
  /// A ZeroMQ message whose first frame is the transport's own: a control message (handled;
  /// false) or the placement of its blob frames (put in `frames`; true when the message, its
  /// placement frame taken off, is to be handled). Malformed ones are refused.
  bool on_transport_frame(const std::string& routing, wire::Frames& frames);
  /// Puts a client's BATCH at the head of the inbox, its messages to be handled in order, each
  /// as if it had come alone. A batch that is not an array of bins, or too long, is
  /// refused whole.
  void unbatch(const std::string& routing, std::shared_ptr<const wire::Inbound> batch);
  void hello(const std::string& routing, const wire::Inbound& in);
  void authenticate(const std::string& routing, const wire::Inbound& in);
  /// Runs a call; `session` is null for calls made inside the server (LocalChannel).
  void dispatch(std::shared_ptr<wire::Inbound> in, Session* session,
                std::shared_ptr<Target> target);
  void server_method(std::string_view method, const std::shared_ptr<wire::Inbound>& in,
                     OwnerId owner, std::shared_ptr<Target> target);
  void run_call(const std::shared_ptr<Object>& obj, const detail::MethodEntry& entry,
                const std::shared_ptr<wire::Inbound>& in, const std::shared_ptr<Target>& target,
                const std::vector<std::uint64_t>& holds, std::optional<Clock::duration> timeout,
                Clock::time_point received);
  void reject(const std::string& routing, std::uint64_t request_id, const std::exception& e);
  /// Sends on the shared socket from any thread. What a poll step sends waits in `outbox`, or
  /// in `held` for a reply to a peer that takes batches, until the step flushes it.
  void send_now(const std::string& routing, wire::Frames frames);
  void send_now_locked(const std::string& routing, wire::Frames frames);
  /// The same for a reply as encoded: one held for a batch is copied from the encoder as it is.
  void send_reply(const std::string& routing, wire::Encoder& enc);
  /// With router_mu held, in a poll step: keeps `body` for `routing`'s next BATCH, if that peer
  /// takes batches (else false, and nothing is kept).
  bool hold_for_batch_locked(const std::string& routing, std::string_view body);
  void flush_outbox();
  /// With router_mu held: sends what the outbox holds, and the replies held for each peer that
  /// takes them batched (batch_peers) as one BATCH message; true if any went to the ROUTER.
  bool flush_outbox_locked();
  // Both with router_mu held. send_locked() sends on the ROUTER, or queues for a same-host
  // connection (stream->write_queued() writes it); true if it went to the ROUTER.
  bool send_locked(const std::string& routing, wire::Frames& frames);
  void wake_poller_if_readable();
  /// Takes up to `max` whole messages that have arrived on the ZeroMQ socket ...
  void receive_batch(std::deque<Received>& into, std::size_t max);
  /// ... and on the same-host transport's connections that `ready` names (some may have
  /// closed).
  void receive_local(std::deque<Received>& into, const std::vector<epoll_event>& ready,
                     std::size_t max);
  void sweep(Clock::time_point now);
  /// The session of `routing`'s peer, or null: polling thread only.
  Session* find_session(const std::string& routing);
  void end_session(const std::string& routing, const char* why);
  /// Keeps the last few thousand ended sessions' peers, so that a late message from one (a
  /// client that was paused past its ttl) is told its session ended rather than that it never
  /// had one.
  void remember_ended(const std::string& routing);
  std::string type_id_for(const detail::DispatchTable& table) const;
  void stop_everything();
  ServerStats stats() const;

  Registry registry;
  ServerOptions options;
  wire::Limits limits;
  server::WorkerPool pool;
  server::ObjectTable table{pool, options.max_objects_per_session};
  Waker waker;
  PollSet poll_set;  // before `stream`, whose connections it watches
  std::shared_ptr<LocalChannel> local;
  zmq::context_t context{1};
  zmq::socket_t router{context, zmq::socket_type::router};
  std::mutex router_mu;  // a ZeroMQ socket is used by one thread at a time
  // Messages of the current poll step, sent together (under router_mu): the socket's I/O
  // thread is then woken once for the lot and writes them in one system call, where one
  // reply at a time cost a wake-up and a TCP send each.
  std::vector<std::pair<std::string, wire::Frames>> outbox;
  // Under router_mu: the replies of the current poll step to peers that take batches, one
  // entry per peer. The first `held_peers` entries are in use; the rest keep their buffers for
  // the next step's.
  std::vector<std::pair<std::string, wire::HeldBatch>> held;
  std::size_t held_peers = 0;
  // Whether the outbox or `held` has anything: written under router_mu, read without it by
  // flush_outbox(), which every poll step calls twice and which mostly finds nothing. A thread
  // that holds something flushes it before its step ends, so a stale look misses nothing.
  std::atomic<bool> outbox_holds{false};
  std::size_t held_messages = 0;
  // Under router_mu: the frames a held batch leaves in, kept so that sending one costs no
  // allocation (every synchronous call's reply is one).
  wire::Frames batch_frames;
  // Under router_mu: the ZeroMQ peers whose session said protocol version 3 or more, which
  // take their replies batched. (The same-host stream writes many messages in one system call
  // already: its peers get them one by one.)
  std::unordered_set<std::string> batch_peers;
  std::string bound;
  // The same-host transport (ServerOptions::local_address, or a unix:// address): its
  // connections are read by the poll step beside the ZeroMQ socket, and sent to under
  // router_mu like it.
  std::unique_ptr<server::StreamListener> stream;
  // Shared segments (docs/protocol.md, 1.2 and 1.3), for same-host clients of either transport.
  const std::shared_ptr<server::SegmentPool> segment_pool =
      std::make_shared<server::SegmentPool>(options.segment_pool_bytes, options.max_message_bytes);
  server::ZmqSegments zmq_segments{segment_pool};
  // Whether the ROUTER may hold a message its descriptor will not signal. ZMQ_FD signals an
  // edge: once a read has drained the socket, the descriptor signals the next arrival, unless
  // a ZeroMQ operation in between took the signal: any send (one by a thread outside the poll
  // step also wakes the poller, see wake_poller_if_readable). Only then does the step ask
  // ZeroMQ: each question costs a poll and a getpid, which a step serving only same-host
  // connections need not pay.
  std::atomic<bool> router_unsure{true};

  std::atomic<bool> stop_requested{false};
  Clock::time_point step_time;  // when the current poll step began; polling thread only
  std::atomic<bool> stopped{false};
  std::unordered_map<std::string, Session> sessions;  // by routing id; polling thread only
  // The session find_session() found last, checked first for the next message: a BATCH's
  // calls all come from one peer. Forgotten when any session ends (a map's elements stay where
  // they are when others are added).
  Session* last_session = nullptr;
  std::string last_session_routing;
  std::unordered_map<std::string, Handshake> handshakes;  // by routing id; polling thread only
  // Read, not yet handled; polling thread only. A step that loses the polling while it runs a
  // call (see dispatch()) leaves the rest to the thread that took it over.
  std::deque<Received> inbox;
  std::unordered_set<std::string> ended_routings;  // polling thread only
  std::deque<std::string> ended_order;             // oldest first, to bound the set
  std::atomic<std::size_t> session_count{0};
  // Told to clients in WELCOME: a client that reconnects learns whether this is the server it
  // knew (its objects may still be there) or a new one (object ids start again at 1).
  const std::uint64_t epoch = wire::random_u64();
  std::map<std::string, std::uint64_t, std::less<>> shared_ids;

  std::atomic<std::uint64_t> calls{0}, errors{0}, rejected{0}, auth_failures{0}, expired{0},
      batches{0};
  // Refusals by limit (ServerStats::limits_hit).
  std::atomic<std::uint64_t> over_message_limit{0}, over_waiter_limit{0}, over_session_limit{0};

  std::mutex timers_mu;
  std::priority_queue<Timer, std::vector<Timer>, std::greater<>> timers;
  std::uint64_t timer_seq = 0;
  // When the first timer is due (the time_point's count; the latest time when none is):
  // written under timers_mu, read without it by run_timers(), which every poll step calls and
  // which mostly finds nothing due. A timer added earlier than a stale look saw wakes the poll.
  std::atomic<Clock::rep> first_timer_due{Clock::time_point::max().time_since_epoch().count()};
  /// With timers_mu held, after the heap changed.
  void note_first_timer_locked() {
    first_timer_due.store(
        (timers.empty() ? Clock::time_point::max() : timers.top().when).time_since_epoch().count());
  }
};

namespace {
std::size_t pool_size(std::size_t requested) {
  if (requested) return requested;
  return std::max<std::size_t>(2, std::thread::hardware_concurrency());
}
}  // namespace

Server::Impl::Impl(Registry reg, ServerOptions opts)
    : registry(std::move(reg)), options(std::move(opts)), pool(pool_size(options.threads)) {
  limits.max_message_bytes = options.max_message_bytes;
  limits.max_body_bytes = options.max_body_bytes;
  limits.max_depth = options.max_depth;
  router.set(zmq::sockopt::linger, 200);
  router.set(zmq::sockopt::sndhwm, 0);
  router.set(zmq::sockopt::rcvhwm, 0);
  router.set(zmq::sockopt::router_mandatory,
             1);  // a reply to a vanished peer is an error, not lost silently
  // ZeroMQ itself drops a peer that sends a frame over the limit, before we could read it.
  router.set(zmq::sockopt::maxmsgsize, static_cast<std::int64_t>(options.max_message_bytes));
  if (wire::is_unix_address(options.address)) {
    if (!options.local_address.empty())
      throw ValueError("local_address is for a server whose address is not a unix:// one");
    stream = std::make_unique<server::StreamListener>(options.address, limits, poll_set.fd(),
                                                      segment_pool);
    bound = options.address;
    return;
  }
  try {
    router.bind(wire::zmq_bind_endpoint(options.address));
  } catch (const zmq::error_t& e) {
    throw ConnectionError("cannot listen on '" + options.address + "': " + e.what());
  }
  bound = router.get(zmq::sockopt::last_endpoint);
  if (!options.local_address.empty()) {
    if (!wire::is_unix_address(options.local_address))
      throw ValueError("local_address must be a unix:// address, not '" + options.local_address +
                       "'");
    stream = std::make_unique<server::StreamListener>(options.local_address, limits, poll_set.fd(),
                                                      segment_pool);
  }
}

void Server::Impl::start() {
  local = std::make_shared<LocalChannel>(weak_from_this());
  for (const auto& [name, entry] : registry.shared()) {
    auto obj = table.add(type_id_for(*entry.table), entry.object, entry.table);
    table.incref(kPinnedOwner, obj->id);
    shared_ids[name] = obj->id;
  }
}

Server::Impl::~Impl() {
  stop_everything();
}

void Server::Impl::stop_everything() {
  if (stopped.exchange(true)) return;
  pool.stop();
  table.clear();
  for (const auto& hook : registry.stop_hooks()) {
    try {
      hook();
    } catch (const std::exception& e) {
      log::error("a stop hook failed: ", e.what());
    }
  }
}

std::string Server::Impl::type_id_for(const detail::DispatchTable& t) const {
  for (const auto& [id, entry] : registry.types())
    if (entry.table->class_name == t.class_name) return id;
  return t.class_name;
}

bool Server::Impl::send_locked(const std::string& routing, wire::Frames& frames) {
  if (stream && server::StreamListener::is_peer(routing)) {
    stream->queue(routing, std::move(frames));
    return false;
  }
  router_unsure.store(true, std::memory_order_relaxed);
  try {
    if (frames.size() > 1 && zmq_segments.any_takers()) {
      auto placed = zmq_segments.place_outgoing(routing, frames);
      for (auto& map : placed.maps) {
        router.send(zmq::buffer(routing), zmq::send_flags::sndmore);
        router.send(map, zmq::send_flags::none);
      }
      if (placed.placement) {
        router.send(zmq::buffer(routing), zmq::send_flags::sndmore);
        router.send(*placed.placement, zmq::send_flags::sndmore);
        wire::send_frames(router, frames);
        return true;
      }
    }
    router.send(zmq::buffer(routing), zmq::send_flags::sndmore);
    wire::send_frames(router, frames);
  } catch (const zmq::error_t& e) {
    log::debug("reply to peer ", wire::to_hex(routing), " not sent: ", e.what());
  }
  return true;
}

namespace {
// A step bounds what it holds back, so that a long batch of calls does not hold their first
// replies until its end: a full outbox leaves at once, and the step holds the next ones.
constexpr std::size_t kMostHeld = 64;
// Larger replies leave in frames of their own rather than be copied into a batch.
constexpr std::size_t kMostBatchedBody = 64 * 1024;
}  // namespace

void Server::Impl::send_now(const std::string& routing, wire::Frames frames) {
  std::lock_guard lock(router_mu);
  send_now_locked(routing, std::move(frames));
}

void Server::Impl::send_now_locked(const std::string& routing, wire::Frames frames) {
  if (server::WorkerPool::in_poll_step()) {
    if (frames.size() == 1 && frames.front().size() <= kMostBatchedBody &&
        is_reply_or_error(frames.front()) &&
        hold_for_batch_locked(routing, frames.front().to_string_view()))
      return;
    if (outbox.size() + held_messages >= kMostHeld && flush_outbox_locked())
      wake_poller_if_readable();
    outbox.emplace_back(routing, std::move(frames));
    outbox_holds.store(true);
    return;
  }
  if (send_locked(routing, frames))
    wake_poller_if_readable();
  else
    stream->write_queued();
}

void Server::Impl::send_reply(const std::string& routing, wire::Encoder& enc) {
  // The common case, a small reply made in a poll step to a ZeroMQ client that takes batches,
  // costs one copy of its bytes and no allocation; any other is sent in frames.
  const bool batchable = enc.blobs().empty() && enc.body().size() <= kMostBatchedBody &&
                         server::WorkerPool::in_poll_step() &&
                         !server::StreamListener::is_peer(routing);
  std::lock_guard lock(router_mu);
  if (batchable &&
      hold_for_batch_locked(routing, std::string_view(enc.body().data(), enc.body().size())))
    return;
  send_now_locked(routing, wire::to_frames(enc));
}

bool Server::Impl::hold_for_batch_locked(const std::string& routing, std::string_view body) {
  if (outbox.size() + held_messages >= kMostHeld && flush_outbox_locked())
    wake_poller_if_readable();
  auto peer = held.begin();
  const auto in_use = held.begin() + static_cast<std::ptrdiff_t>(held_peers);
  while (peer != in_use && peer->first != routing) ++peer;
  if (peer == in_use) {
    // A peer that holds replies in this step already takes batches: only a new one is looked up.
    if (!batch_peers.count(routing)) return false;
    if (held_peers == held.size()) held.emplace_back();
    peer = held.begin() + static_cast<std::ptrdiff_t>(held_peers++);
    peer->first = routing;
  }
  peer->second.add(body);
  ++held_messages;
  outbox_holds.store(true);
  return true;
}

void Server::Impl::flush_outbox() {
  if (!outbox_holds.load()) return;
  std::lock_guard lock(router_mu);
  if (flush_outbox_locked()) wake_poller_if_readable();
}

bool Server::Impl::flush_outbox_locked() {
  if (outbox.empty() && held_peers == 0) return false;
  bool to_router = false;
  for (auto& [routing, frames] : outbox) to_router |= send_locked(routing, frames);
  outbox.clear();
  // Replies held for a peer that takes batches leave as one message, so that many calls in
  // flight cost ZeroMQ (and both sides' I/O threads) one message, not one each. A lone reply
  // (every synchronous call's) leaves as itself.
  for (std::size_t i = 0; i < held_peers; ++i) {
    batch_frames.clear();
    batch_frames.push_back(held[i].second.take());
    to_router |= send_locked(held[i].first, batch_frames);
  }
  held_peers = 0;
  held_messages = 0;
  outbox_holds.store(false);
  if (stream) stream->write_queued();  // one system call per connection for the lot
  return to_router;
}

void Server::Impl::wake_poller_if_readable() {
  // A send can consume the socket's readiness signal (ZMQ_FD is edge-triggered and any
  // operation on the socket may reset it): if a message is waiting, the polling thread
  // would not see it, so it is woken. The poller checks for itself before it sleeps.
  if (!server::WorkerPool::polling_here() && (router.get(zmq::sockopt::events) & ZMQ_POLLIN))
    waker.wake();
}

void Server::Impl::receive_batch(std::deque<Received>& into, std::size_t max) {
  std::lock_guard lock(router_mu);
  router_unsure = true;  // unless the socket is drained below
  for (std::size_t i = 0; i < max; ++i) {
    auto frames = wire::recv_frames(router);
    if (!frames) {
      router_unsure = false;
      break;
    }
    if (frames->size() < 2) {
      ++rejected;
      log::warn("dropped a message with no body");
      continue;
    }
    std::string routing(static_cast<const char*>(frames->front().data()), frames->front().size());
    frames->erase(frames->begin());
    into.push_back(Received{std::move(routing), std::move(*frames)});
  }
}

void Server::Impl::receive_local(std::deque<Received>& into, const std::vector<epoll_event>& ready,
                                 std::size_t max) {
  server::StreamListener::Events events;
  stream->handle(ready.data(), ready.size(), events, max);
  for (auto& [routing, frames] : events.messages)
    into.push_back(Received{routing, std::move(frames)});
  for (auto& [routing, refused] : events.refused) {
    const std::uint64_t request_id = sessions.count(routing) ? refused.request_id : 0;
    if (refused.over_limit)
      reject(routing, request_id, LimitError("message over a limit: " + refused.why));
    else  // it named a segment it may not: malformed, though the stream is still in step
      reject(routing, request_id, ProtocolError(refused.why));
  }
  // A local client's connection is its session's: when it closes (the process ended, even
  // killed), what the session held is released at once rather than after its ttl.
  for (const auto& closed : events.closed) {
    if (closed.malformed) {
      ++rejected;
      log::warn("closed the local connection of peer ", wire::to_hex(closed.routing), ": it ",
                closed.why);
    }
    handshakes.erase(closed.routing);
    end_session(closed.routing, closed.why.c_str());
  }
}

void Server::Impl::reject(const std::string& routing, std::uint64_t request_id,
                          const std::exception& e) {
  ++rejected;
  if (dynamic_cast<const LimitError*>(&e)) ++over_message_limit;
  log::warn("rejected a message from peer ", wire::to_hex(routing), ": ", e.what());
  send_now(routing, encode_error(request_id, wire::WireError::from(e, kind_of(e))));
}

void Server::Impl::handle_next() {
  Received& head = inbox.front();
  if (!head.batch) {
    Received received = std::move(head);
    inbox.pop_front();
    if (wire::is_transport_frame(received.frames.front()) &&
        !(stream && server::StreamListener::is_peer(received.routing))) {
      // A same-host ZeroMQ client's segments (docs/protocol.md, 1.3): the message is the
      // transport's own, or its first frame places the blob frames that follow.
      if (!on_transport_frame(received.routing, received.frames)) return;
    }
    const std::string_view body = received.frames.front().to_string_view();
    handle(received.routing, std::move(received.frames), nullptr, body);
    return;
  }
  // A BATCH stays at the head of the inbox until its last message is taken, so that a thread
  // that takes the polling over while this one runs a slow call goes on with the next.
  const auto& bin = head.batch->field(1).via.array.ptr[head.next].via.bin;
  const std::string_view body(bin.ptr, bin.size);
  if (++head.next < head.batch->field(1).via.array.size) {
    handle(std::string(head.routing), {}, head.batch, body);
    return;
  }
  Received received = std::move(head);
  inbox.pop_front();
  handle(received.routing, {}, std::move(received.batch), body);
}

bool Server::Impl::on_transport_frame(const std::string& routing, wire::Frames& frames) {
  const bool has_session = find_session(routing) != nullptr;
  try {
    const wire::TransportFrame head = wire::read_transport_frame(frames.front());
    if (head.kind != wire::StreamKind::kMessage) {
      if (frames.size() != 1) throw ProtocolError("a transport message of more than one frame");
      auto answers = zmq_segments.on_control(routing, head.kind, head.body, has_session);
      if (!answers.empty()) {
        std::lock_guard lock(router_mu);
        for (auto& answer : answers) {
          wire::Frames one;
          one.push_back(std::move(answer));
          send_now_locked(routing, std::move(one));
        }
      }
      return false;
    }
    const std::string placements(head.body);  // the frame goes: the body moves up
    frames.erase(frames.begin());
    if (frames.empty()) throw ProtocolError("a placement frame with no message after it");
    if (!has_session) return true;  // the message is answered no_session, its blobs unread
    try {
      zmq_segments.take_placed(routing, placements, frames);
    } catch (const ValueError& e) {
      reject(routing, wire::peek_request_id(frames.front().to_string_view()),
             ProtocolError(e.what()));
      return false;
    }
    return true;
  } catch (const std::exception& e) {
    reject(routing, 0, e);
    return false;
  }
}

void Server::Impl::handle(const std::string& routing, wire::Frames frames,
                          std::shared_ptr<const wire::Inbound> batch, std::string_view body) {
  // Read before parsing, so that a call refused by the parser still fails at its caller
  // instead of leaving it waiting.
  const bool batched = batch != nullptr;
  const std::uint64_t request_id = wire::peek_request_id(body);
  std::shared_ptr<wire::Inbound> in;
  try {
    in = batched ? wire::Inbound::parse_batched(std::move(batch), body, limits)
                 : wire::Inbound::parse(std::move(frames), limits);
  } catch (const std::exception& e) {
    reject(routing, sessions.count(routing) ? request_id : 0, e);
    return;
  }
  try {
    handle_message(routing, std::move(in), batched);
  } catch (const std::exception& e) {
    reject(routing, 0, e);
  }
}

void Server::Impl::unbatch(const std::string& routing, std::shared_ptr<const wire::Inbound> batch) {
  // The protocol's bound (section 2); the C++ client sends at most 32.
  constexpr std::uint32_t kMostBatched = 1024;
  const msgpack::object& list = batch->field(1);
  if (list.type != msgpack::type::ARRAY) throw ProtocolError("a batch holds no array");
  if (list.via.array.size > kMostBatched)
    throw LimitError("a batch of " + std::to_string(list.via.array.size) + " messages (at most " +
                     std::to_string(kMostBatched) + ")");
  for (std::uint32_t i = 0; i < list.via.array.size; ++i)
    if (list.via.array.ptr[i].type != msgpack::type::BIN)
      throw ProtocolError("a batched message is not bin");
  // Each message keeps the batch alive rather than copying its body out of it.
  if (list.via.array.size > 0) inbox.push_front(Received{routing, {}, std::move(batch), 0});
  ++batches;
}

void Server::Impl::handle_message(const std::string& routing, std::shared_ptr<wire::Inbound> in,
                                  bool batched) {
  if (batched && (in->op() == Op::kHello || in->op() == Op::kAuth || in->op() == Op::kBatch))
    throw ProtocolError("a batch carries no handshake and no batch");
  switch (in->op()) {
    case Op::kHello:
      hello(routing, *in);
      return;
    case Op::kAuth:
      authenticate(routing, *in);
      return;
    default:
      break;
  }
  Session* const found = find_session(routing);
  if (!found) {
    std::uint64_t request_id = 0;
    if (in->op() == Op::kCall && in->size() > 1 &&
        in->field(1).type == msgpack::type::POSITIVE_INTEGER)
      request_id = in->field(1).via.u64;
    ++rejected;
    bool ended = ended_routings.count(routing) != 0;
    log::warn("message from peer ", wire::to_hex(routing),
              ended ? " whose session has ended" : " without a session");
    std::string message =
        ended ? "the session has ended (it said goodbye, or no heartbeat reached the server "
                "within the session ttl of " +
                    std::to_string(options.session_ttl.count()) +
                    " ms): the locks, objects and waiting calls it held have been released"
              : "no session: authenticate first";
    send_now(routing, encode_error(request_id, {std::string(wire::kind::kNoSession),
                                                "ConnectionError", message, "", ""}));
    return;
  }
  Session& session = *found;
  session.last_seen = step_time;
  switch (in->op()) {
    case Op::kCall: {
      std::uint64_t request_id = wire::as_u64(in->field(1), "request id");
      std::string_view method;  // in the message, which outlives the target's making
      std::uint64_t object_id = 0;
      try {
        object_id = wire::as_u64(in->field(2), "object id");
        method = wire::as_string_view(in->field(3), "method");
        // Fields after the sixth are optional (timeout_ms) or from a later version: ignored.
        if (in->size() < 6) throw ProtocolError("a call has at least 6 fields");
      } catch (const std::exception& e) {
        reject(routing, request_id, e);
        return;
      }
      auto target = std::allocate_shared<RemoteTarget>(
          wire::Recycling<RemoteTarget>(), weak_from_this(), routing, session.owner, session.state,
          request_id, method, object_id);
      dispatch(std::move(in), &session, std::move(target));
      return;
    }
    case Op::kPing: {
      wire::Encoder enc;
      enc.packer().pack_array(1);
      enc.packer().pack(static_cast<std::uint8_t>(Op::kPong));
      send_now(routing, wire::to_frames(enc));
      return;
    }
    case Op::kBye:
      end_session(routing, "said goodbye");
      return;
    case Op::kBatch:
      unbatch(routing, std::move(in));
      return;
    default:
      throw ProtocolError("unexpected message op " + std::to_string(static_cast<int>(in->op())));
  }
}

void Server::Impl::hello(const std::string& routing, const wire::Inbound& in) {
  std::uint64_t version = wire::as_u64(in.field(1), "protocol version");
  if (version < wire::kMinProtocolVersion || version > wire::kProtocolVersion) {
    ++rejected;
    log::warn("peer ", wire::to_hex(routing), " speaks protocol version ", version);
    send_now(routing, encode_error(0, {std::string(wire::kind::kVersion), "ProtocolError",
                                       "unsupported protocol version " + std::to_string(version) +
                                           " (this server speaks " +
                                           std::to_string(wire::kMinProtocolVersion) + " to " +
                                           std::to_string(wire::kProtocolVersion) + ")",
                                       "", ""}));
    return;
  }
  Handshake h;
  h.version = version;
  if (!wire::read_nonce(in.field(2), h.client_nonce))
    throw ProtocolError("hello carries no 32-byte nonce");
  if (in.size() > 3 && in.field(3).type == msgpack::type::STR)
    h.client_name = wire::as_string(in.field(3), "client name").substr(0, 128);
  if (sessions.count(routing)) end_session(routing, "started a new handshake");
  // Bound the handshakes in progress: a flood of hellos costs a fixed amount of memory.
  constexpr std::size_t kMaxHandshakes = 4096;
  if (handshakes.size() >= kMaxHandshakes) handshakes.erase(handshakes.begin());
  h.server_nonce = wire::random_nonce();
  h.started = Clock::now();
  wire::Mac mine = wire::proof(options.authkey, wire::kServerLabel, h.client_nonce, h.server_nonce);
  wire::Encoder enc;
  auto& pk = enc.packer();
  pk.pack_array(4);
  pk.pack(static_cast<std::uint8_t>(Op::kChallenge));
  pk.pack(wire::kProtocolVersion);
  pk.pack_bin(h.server_nonce.size());
  pk.pack_bin_body(reinterpret_cast<const char*>(h.server_nonce.data()), h.server_nonce.size());
  pk.pack_bin(mine.size());
  pk.pack_bin_body(reinterpret_cast<const char*>(mine.data()), mine.size());
  handshakes[routing] = h;
  send_now(routing, wire::to_frames(enc));
}

void Server::Impl::authenticate(const std::string& routing, const wire::Inbound& in) {
  auto it = handshakes.find(routing);
  if (it == handshakes.end()) throw ProtocolError("authentication without a hello");
  Handshake h = it->second;
  handshakes.erase(it);
  wire::Mac expected =
      wire::proof(options.authkey, wire::kClientLabel, h.server_nonce, h.client_nonce);
  if (!wire::equal_constant_time(in.field(1), expected)) {
    ++auth_failures;
    log::warn("authentication failed for peer ", wire::to_hex(routing), " (wrong authkey)");
    send_now(routing, encode_error(0, {std::string(wire::kind::kAuth), "AuthenticationError",
                                       "authentication failed: the authkeys differ", "", ""}));
    return;
  }
  if (sessions.size() >= options.max_sessions) {
    ++over_session_limit;
    log::warn("refused a session to peer ", wire::to_hex(routing), ": ", sessions.size(),
              " sessions, the limit");
    send_now(routing, encode_error(0, {std::string(wire::kind::kLimit), "LimitError",
                                       "the server has " + std::to_string(sessions.size()) +
                                           " sessions, its limit (max_sessions)",
                                       "", ""}));
    return;
  }
  OwnerId owner;
  do owner = wire::random_u64();
  while (owner <= kLocalOwner);
  table.open_owner(owner);
  sessions[routing] = Session{owner, Clock::now(), h.client_name};
  if (h.version >= 3 && !server::StreamListener::is_peer(routing)) {
    std::lock_guard lock(router_mu);
    batch_peers.insert(routing);
  }
  if (stream && server::StreamListener::is_peer(routing)) stream->set_authenticated(routing, true);
  session_count = sessions.size();
  log::info("session ", owner, " opened for '", h.client_name, "' (peer ", wire::to_hex(routing),
            ")");
  wire::Encoder enc;
  auto& pk = enc.packer();
  pk.pack_array(5);
  pk.pack(static_cast<std::uint8_t>(Op::kWelcome));
  pk.pack(owner);
  pk.pack(static_cast<std::uint64_t>(options.heartbeat_interval.count()));
  pk.pack(static_cast<std::uint64_t>(options.session_ttl.count()));
  pk.pack(epoch);
  send_now(routing, wire::to_frames(enc));
}

Server::Impl::Session* Server::Impl::find_session(const std::string& routing) {
  if (last_session && last_session_routing == routing) return last_session;
  auto it = sessions.find(routing);
  if (it == sessions.end()) return nullptr;
  last_session_routing = routing;
  return last_session = &it->second;
}

void Server::Impl::end_session(const std::string& routing, const char* why) {
  auto it = sessions.find(routing);
  if (it == sessions.end()) return;
  last_session = nullptr;
  OwnerId owner = it->second.owner;
  std::string name = std::move(it->second.name);
  auto watched = std::move(it->second.watched);
  it->second.state->open.store(false);
  sessions.erase(it);
  {
    std::lock_guard lock(router_mu);
    batch_peers.erase(routing);
  }
  if (stream && server::StreamListener::is_peer(routing))
    stream->set_authenticated(routing, false);
  else
    zmq_segments.forget(routing);
  session_count = sessions.size();
  remember_ended(routing);
  log::info("session ", owner, " of '", name, "' ended: ", why);
  // Each object gives back what the session held there, after the calls already queued on it
  // (the same strand runs them in order); then the session's references go.
  for (auto& [id, weak] : watched) {
    auto obj = weak.lock();
    if (!obj) continue;
    obj->strand->post([obj, owner] {
      try {
        obj->table->session_ended(obj->instance.get(), owner);
      } catch (const std::exception& e) {
        log::error("releasing what session ", owner, " held in '", obj->type_id,
                   "' failed: ", e.what());
      }
    });
  }
  table.close_owner(owner);
}

void Server::Impl::remember_ended(const std::string& routing) {
  constexpr std::size_t kRemembered = 4096;
  if (!ended_routings.insert(routing).second) return;
  ended_order.push_back(routing);
  if (ended_order.size() > kRemembered) {
    ended_routings.erase(ended_order.front());
    ended_order.pop_front();
  }
}

void Server::Impl::sweep(Clock::time_point now) {
  std::vector<std::string> dead;
  for (const auto& [routing, s] : sessions)
    if (now - s.last_seen > options.session_ttl) dead.push_back(routing);
  for (const auto& routing : dead) {
    ++expired;
    end_session(routing, "expired (no heartbeat within the session ttl)");
  }
  // A handshake gets at least ten seconds whatever the session ttl: a short ttl is about
  // noticing dead clients, and must not stop a slow one from connecting at all.
  auto handshake_timeout = std::max<Clock::duration>(options.session_ttl, std::chrono::seconds(10));
  for (auto it = handshakes.begin(); it != handshakes.end();) {
    if (now - it->second.started > handshake_timeout)
      it = handshakes.erase(it);
    else
      ++it;
  }
}

void Server::Impl::watch(Session& session, const std::shared_ptr<Object>& obj) {
  if (!obj->table->session_ended) return;
  if (!session.watched.try_emplace(obj->id, obj).second) return;
  if (session.watched.size() < session.prune_at) return;
  // A session that goes through many short-lived objects: forget the destroyed ones.
  std::erase_if(session.watched, [](const auto& entry) { return entry.second.expired(); });
  session.prune_at = std::max<std::size_t>(64, 2 * session.watched.size());
}

void Server::Impl::dispatch(std::shared_ptr<wire::Inbound> in, Session* session,
                            std::shared_ptr<Target> target) {
  ++calls;
  const bool local = session == nullptr;
  const OwnerId owner = local ? kLocalOwner : session->owner;
  std::uint64_t object_id;
  std::string_view method;  // into the request, which outlives its use here
  std::vector<std::uint64_t> refs;
  std::optional<Clock::duration> timeout;
  const auto received = local ? Clock::now() : step_time;
  try {
    object_id = wire::as_u64(in->field(2), "object id");
    method = wire::as_string_view(in->field(3), "method");
    refs = wire::as_id_list(in->field(5), "refs");
    if (in->size() > 6 && in->field(6).type != msgpack::type::NIL) {
      // Bounded, so that the deadline's arithmetic cannot overflow.
      constexpr std::uint64_t kLongestMs = std::uint64_t{1} << 40;
      timeout =
          std::chrono::milliseconds(std::min(wire::as_u64(in->field(6), "timeout_ms"), kLongestMs));
    }
  } catch (...) {
    target->fail(std::current_exception());
    return;
  }
  if (object_id == wire::kServerObject) {
    try {
      server_method(method, in, owner, target);
    } catch (...) {
      target->fail(std::current_exception());
    }
    return;
  }
  auto obj = table.get(object_id);
  if (!obj) {
    target->fail(std::make_exception_ptr(
        KeyError("no object with id " + std::to_string(object_id) + " (it was released)")));
    return;
  }
  const detail::MethodEntry* entry = obj->table->find(method);
  if (!entry) {
    target->fail(std::make_exception_ptr(AttributeError(
        "'" + obj->type_id + "' object has no exposed method '" + std::string(method) + "'")));
    return;
  }
  if (session) watch(*session, obj);
  // The caller may drop its proxies as soon as the request is sent; hold what the request
  // refers to until the method has run (and taken references of its own).
  std::size_t held = 0;
  try {
    for (; held < refs.size(); ++held) table.incref(kInFlightOwner, refs[held]);
  } catch (...) {
    for (std::size_t i = 0; i < held; ++i) table.decref(kInFlightOwner, refs[i]);
    target->fail(std::current_exception());
    return;
  }
  // The thread that read a call runs it at once when its object is idle: a local call, or a
  // call read by the polling thread, which lends the polling while the call runs (an idle
  // thread takes it over if the call is slow; see WorkerPool::lend_polling()). Calls of a type
  // of short calls need no loan. If the polling was taken over, the poll step sees it and ends.
  // Run here, the call borrows what it needs; only a queued call takes a task of its own.
  auto run_here = [&] { run_call(obj, *entry, in, target, refs, timeout, received); };
  if (local || (obj->table->short_calls && server::WorkerPool::polling_here())) {
    if (obj->strand->try_run_here(run_here)) return;
  } else if (server::WorkerPool::polling_here()) {
    auto loan = pool.lend_polling();
    bool ran = obj->strand->try_run_here(run_here);
    pool.reclaim_polling(loan);
    if (ran) return;
  }
  obj->strand->post([this, obj, entry, in = std::move(in), target = std::move(target),
                     refs = std::move(refs), timeout,
                     received] { run_call(obj, *entry, in, target, refs, timeout, received); });
}

void Server::Impl::add_timer(Timer timer) {
  bool earliest;
  {
    std::lock_guard lock(timers_mu);
    timer.seq = ++timer_seq;
    earliest = timers.empty() || timer.when < timers.top().when;
    timers.push(std::move(timer));
    note_first_timer_locked();
  }
  if (earliest) waker.wake();  // the poll's timeout must shrink
}

std::chrono::milliseconds Server::Impl::run_timers(Clock::time_point now,
                                                   std::chrono::milliseconds cap) {
  // Nothing due yet: how long until the first is, rounded up as below.
  const Clock::time_point first{Clock::duration(first_timer_due.load())};
  if (now < first) return std::min(cap, std::chrono::ceil<std::chrono::milliseconds>(first - now));
  std::vector<Timer> due;
  std::chrono::milliseconds next = cap;
  {
    std::lock_guard lock(timers_mu);
    while (!timers.empty() && timers.top().when <= now) {
      due.push_back(timers.top());
      timers.pop();
    }
    note_first_timer_locked();
    if (!timers.empty()) {
      // Round up, so that the poll does not wake a moment early and spin.
      auto left = std::chrono::ceil<std::chrono::milliseconds>(timers.top().when - now);
      next = std::min(next, left);
    }
  }
  for (auto& timer : due) {
    auto obj = timer.object.lock();
    if (!obj) continue;
    // The task refers to the object: it stays alive until the task has run.
    obj->strand->post([obj, task = std::move(timer.task)] {
      try {
        task();
      } catch (const std::exception& e) {
        log::error("a scheduled task failed: ", e.what());
      }
    });
  }
  return next;
}

void Server::Impl::run_call(const std::shared_ptr<Object>& obj, const detail::MethodEntry& entry,
                            const std::shared_ptr<wire::Inbound>& in,
                            const std::shared_ptr<Target>& target,
                            const std::vector<std::uint64_t>& holds,
                            std::optional<Clock::duration> timeout, Clock::time_point received) {
  {
    Services services(*this, obj);
    CallContext ctx(target, obj->type_id, &services);
    CallContext::Scope scope(ctx);
    RequestHooks hooks(*this);
    try {
      wire::DecodeScope decode(in->take_blobs(), &hooks);
      entry.invoke(obj->instance.get(), in->field(4), ctx);
    } catch (...) {
      target->fail(std::current_exception());
    }
  }
  for (auto id : holds) table.decref(kInFlightOwner, id);
  if (target->answered()) return;  // nearly every call: nothing more to do
  // The call waits in its object: counted against its session's bound, and given its deadline
  // as a timer on the object's strand, so that the timeout and a hand-over to the waiting call
  // (a put to a parked get) are never both decided: whichever runs first answers, and the other
  // sees caller_alive() false.
  if (!target->park(options.max_waiters_per_session, over_waiter_limit)) return;
  if (timeout) {
    add_timer(Timer{
        received + *timeout, 0, obj, [weak = std::weak_ptr<Target>(target), timeout = *timeout] {
          auto t = weak.lock();
          if (!t) return;
          t->fail(std::make_exception_ptr(TimeoutError(
              "'" + std::string(t->method()) + "' did not complete within its " +
              std::to_string(
                  std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count()) +
              " ms deadline")));
        }});
  }
}

void Server::Impl::server_method(std::string_view method, const std::shared_ptr<wire::Inbound>& in,
                                 OwnerId owner, std::shared_ptr<Target> target) {
  const msgpack::object& args = in->field(4);
  if (method == "release") {
    auto [ids] = detail::decode_args<std::tuple<std::vector<std::uint64_t>>>(args, "release()");
    for (auto id : ids) table.decref(owner, id);
    target->reply(&detail::pack_result<void>, nullptr);
  } else if (method == "create") {
    auto [type_id, ctor_args] =
        detail::decode_args<std::tuple<std::string, msgpack::object>>(args, "create()");
    const Registry::TypeEntry* entry = registry.find_type(type_id);
    if (!entry) throw AttributeError("this server has no type '" + type_id + "' registered");
    if (!entry->factory) throw TypeError("type '" + type_id + "' cannot be created on this server");
    // A constructor may be slow: run it as a task of its own, not in the poll step. The arguments
    // point into the request, which the task keeps alive.
    pool.submit([this, entry, target, in, ctor_args = ctor_args, type_id = type_id] {
      try {
        RequestHooks hooks(*this);
        wire::DecodeScope decode(in->blobs(), &hooks);
        auto instance = entry->factory(ctor_args);
        auto obj = table.add(type_id, std::move(instance), entry->table);
        // Count a reference while replying, so that an object whose reply cannot be delivered
        // (the session ended meanwhile) is destroyed rather than kept forever.
        table.incref(kInFlightOwner, obj->id);
        RefReply ref{obj->id, obj->type_id, &table};
        target->reply(&pack_ref_reply, &ref);
        if (!ref.hold_dropped) table.decref(kInFlightOwner, obj->id);  // nothing was encoded
      } catch (...) {
        target->fail(std::current_exception());
      }
    });
  } else if (method == "shared") {
    auto [name] = detail::decode_args<std::tuple<std::string>>(args, "shared()");
    auto it = shared_ids.find(name);
    if (it == shared_ids.end())
      throw AttributeError("this server shares no object named '" + name + "'");
    auto obj = table.get(it->second);
    RefReply ref{obj->id, obj->type_id};
    target->reply(&pack_ref_reply, &ref);
  } else if (method == "stats") {
    detail::decode_args<std::tuple<>>(args, "stats()");
    ServerStats s = stats();
    target->reply(&detail::pack_result<ServerStats>, &s);
  } else if (method == "describe") {
    detail::decode_args<std::tuple<>>(args, "describe()");
    std::map<std::string, std::vector<std::string>> types, shared;
    for (const auto& [id, entry] : registry.types())
      for (const auto& m : entry.table->methods) types[id].push_back(m.name);
    for (const auto& [name, entry] : registry.shared())
      for (const auto& m : entry.table->methods) shared[name].push_back(m.name);
    std::map<std::string, std::map<std::string, std::vector<std::string>>> out{{"types", types},
                                                                               {"shared", shared}};
    target->reply(&detail::pack_result<decltype(out)>, &out);
  } else if (method == "shutdown") {
    detail::decode_args<std::tuple<>>(args, "shutdown()");
    target->reply(&detail::pack_result<void>, nullptr);
    stop_requested = true;
    waker.wake();
  } else {
    throw AttributeError("the server has no method '" + std::string(method) + "'");
  }
}

ServerStats Server::Impl::stats() const {
  ServerStats s;
  s.objects = table.size();
  s.sessions = session_count.load();
  s.created = table.created();
  s.destroyed = table.destroyed();
  s.calls = calls.load();
  s.batches = batches.load();
  s.errors = errors.load();
  s.rejected = rejected.load();
  s.auth_failures = auth_failures.load();
  s.expired_sessions = expired.load();
  s.objects_by_type = table.count_by_type();
  s.limits_hit = {{"message", over_message_limit.load()},
                  {"objects_per_session", table.refused()},
                  {"waiters_per_session", over_waiter_limit.load()},
                  {"sessions", over_session_limit.load()}};
  const auto segments = segment_pool->counts();
  s.segments = segments.segments;
  s.segments_free = segments.free;
  return s;
}

void Server::Impl::serve() {
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_NONBLOCK | O_CLOEXEC) != 0) throw Error("pipe failed");
  int expected = -1;
  bool owns_signals = signal_write_fd.compare_exchange_strong(expected, pipe_fds[1]);
  struct sigaction action {
  }, old_int{}, old_term{};
  if (owns_signals) {
    action.sa_handler = on_stop_signal;
    sigemptyset(&action.sa_mask);
    ::sigaction(SIGINT, &action, &old_int);
    ::sigaction(SIGTERM, &action, &old_term);
  }
  log::info("serving on ", bound);
  // One step of the I/O loop, run by whichever thread of the pool is free (see
  // WorkerPool::serve): the thread that reads a request runs it and sends its reply itself.
  // It polls the socket's file descriptor without holding the socket, so that other threads
  // can send replies meanwhile; ZMQ_EVENTS (read under the mutex) says whether a message is
  // really waiting.
  const int router_fd = router.get(zmq::sockopt::fd);
  poll_set.watch(router_fd, PollSet::kRouter);
  poll_set.watch(waker.fd(), PollSet::kWaker);
  poll_set.watch(pipe_fds[0], PollSet::kSignal);
  std::vector<epoll_event> local_ready;
  auto readable = [&] {
    std::lock_guard lock(router_mu);
    return (router.get(zmq::sockopt::events) & ZMQ_POLLIN) != 0;
  };
  auto last_sweep = Clock::now();
  auto wait = options.heartbeat_interval;
  std::function<void()> step = [&] {
    // What a step that lost the polling during a slow call had not sent yet (see dispatch()).
    flush_outbox();
    if (inbox.empty()) {
      const bool router_ready = router_unsure && readable();
      constexpr int kMostEvents = 64;  // more wait for the next step (the set is level-triggered)
      epoll_event ready[kMostEvents];
      const int n = ::epoll_wait(poll_set.fd(), ready, kMostEvents,
                                 router_ready ? 0 : static_cast<int>(wait.count()));
      bool router_signalled = false;
      local_ready.clear();
      for (int i = 0; i < n; ++i) {
        switch (ready[i].data.u64) {
          case PollSet::kRouter:
            router_signalled = true;
            break;
          case PollSet::kWaker:
            // A wake-up may be a sender's that saw a message waiting on the ROUTER.
            waker.clear();
            router_unsure = true;
            break;
          case PollSet::kSignal:
            log::info("stopping on a signal");
            stop_requested = true;
            break;
          default:
            local_ready.push_back(ready[i]);
        }
      }
      // Bounded batch, so timers and sweeps are not starved by a flood of requests. Woken by
      // the descriptor alone (nothing was waiting when the last step ended), one message is
      // read and answered before the socket is asked for more: the ZMQ_EVENTS read that must
      // follow the reply's send anyway (see router_unsure) then says whether more came, and a
      // synchronous call costs one look at ZeroMQ's mailbox (a poll(2) and a getpid(2) in
      // libzmq) less than reading until the socket is empty. Found waiting, they are read all.
      if (!stop_requested) {
        if (router_ready || router_unsure || router_signalled)
          receive_batch(inbox, router_ready ? 1024 : 1);
        if (!local_ready.empty()) receive_local(inbox, local_ready, 1024);
      }
    }
    step_time = Clock::now();
    while (!inbox.empty()) {
      handle_next();
      if (!server::WorkerPool::polling_here()) return flush_outbox();
    }
    flush_outbox();
    auto now = Clock::now();
    if (now - last_sweep >= options.heartbeat_interval) {
      sweep(now);
      last_sweep = now;
    }
    wait = run_timers(now, options.heartbeat_interval);
    if (stop_requested) pool.wake_all();
  };
  pool.serve(step, [&] { return stop_requested.load(); });
  if (owns_signals) {
    ::sigaction(SIGINT, &old_int, nullptr);
    ::sigaction(SIGTERM, &old_term, nullptr);
    signal_write_fd = -1;
  }
  poll_set.forget(pipe_fds[0]);
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);
  log::info("stopped");
}

Server::Server(Registry registry, ServerOptions options)
    : impl_(std::make_shared<Impl>(std::move(registry), std::move(options))) {
  impl_->start();
}

Server::~Server() {
  impl_->stop_everything();
}

std::string Server::address() const {
  return impl_->bound;
}

std::string Server::local_address() const {
  return impl_->stream && impl_->stream->address() != impl_->bound ? impl_->stream->address() : "";
}

void Server::serve_forever() {
  impl_->serve();
}

void Server::stop() {
  impl_->stop_requested = true;
  impl_->waker.wake();
}

ServerStats Server::stats() const {
  return impl_->stats();
}

}  // namespace zmanager
