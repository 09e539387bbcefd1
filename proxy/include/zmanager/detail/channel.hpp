// What a proxy talks through (internal to the library, public only because templates use it).
// A Channel is either a connection to a remote server or, inside the server, a direct path to
// its own objects; proxies and futures do not know which.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <typeinfo>

#include "zmanager/wire/codec.hpp"

namespace zmanager::detail {

class Channel;

/// How long a call may take: none (the default) waits as long as the call needs.
using CallTimeout = std::optional<std::chrono::milliseconds>;

/// How long past a call's deadline the client still waits for the server's own answer (its
/// TimeoutError, or the result if the call completed just in time) before it gives up on its
/// own: only a server that cannot answer at all is timed out on this side.
inline constexpr std::chrono::milliseconds kDeadlineGrace{1000};

/// Completion of one request: filled by the channel, waited on by a Future.
class CallState {
 public:
  explicit CallState(std::weak_ptr<Channel> channel) : channel_(std::move(channel)) {}
  ~CallState();
  CallState(const CallState&) = delete;
  CallState& operator=(const CallState&) = delete;

  /// `session`: the client session the reply's references were counted for (see ObjectRef).
  void complete(wire::Payload payload, std::uint64_t session = 0);
  void fail(std::exception_ptr error);
  /// The call's deadline: take() raises TimeoutError when no answer came by then (plus
  /// kDeadlineGrace). Set by the sender before anyone waits.
  void set_deadline(std::chrono::steady_clock::time_point deadline, CallTimeout timeout);
  /// Whether the call's deadline has passed by `now` (false for a call without one).
  bool past_deadline(std::chrono::steady_clock::time_point now) const;
  /// Whether the call has a deadline: so that the clock is read only for those that do.
  bool has_deadline() const { return has_deadline_.load(std::memory_order_acquire); }

  /// Waiting lets the channel use the waiting thread to read replies (see Connection).
  void wait();
  bool wait_until(std::chrono::steady_clock::time_point deadline);
  /// Done, after reading what has arrived if no other thread is reading.
  bool ready();
  /// Done, without reading anything.
  bool done() const;
  /// Waits for another thread to complete this call; false if `deadline` passed first.
  bool wait_here(std::optional<std::chrono::steady_clock::time_point> deadline);

  /// Takes the result (once); rethrows the remote failure.
  wire::Payload take();
  std::shared_ptr<Channel> channel() const { return channel_.lock(); }
  /// The session the result's references belong to (set when the reply arrived).
  std::uint64_t session() const { return session_; }

 private:
  enum Progress : int { kPending, kSettling, kDone };
  /// Whether this thread is the one to settle the call (the first to complete or fail it).
  bool claim();
  /// Makes the result written by the claiming thread visible, and wakes wait_here()'s sleepers.
  void publish();

  // The result is written once, by the thread that claimed it, and read only once `progress_`
  // is kDone: no mutex on the way of a call, where the two or three a call took showed in
  // profiles of synchronous calls.
  std::atomic<int> progress_{kPending};
  std::optional<wire::Payload> payload_;
  std::exception_ptr error_;
  std::uint64_t session_ = 0;
  // For the threads that sleep in wait_here(), and for the deadline, which the connection may
  // read on another thread. `sleepers_` lets publish() skip the mutex when nobody sleeps.
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<int> sleepers_{0};
  std::atomic<bool> has_deadline_{false};
  std::weak_ptr<Channel> channel_;
  std::optional<std::chrono::steady_clock::time_point> deadline_;
  CallTimeout timeout_;
};

class ObjectRef;

class Channel : public std::enable_shared_from_this<Channel> {
 public:
  virtual ~Channel() = default;

  /// Sends a request whose body `enc` was written with begin_call(); the result arrives in the
  /// returned state. With `want_reply` false the server sends nothing back.
  virtual std::shared_ptr<CallState> send(std::uint64_t request_id, wire::Encoder& enc,
                                          bool want_reply) = 0;
  /// A synchronous call: sends the request and waits for its reply on this thread, up to
  /// `deadline` (the call's, set on the state before it leaves) plus kDeadlineGrace. Returns
  /// the state, done unless the deadline passed; take() then gives the result or the error. The
  /// same as send() and take(), except that a connection keeps what it took to send for the
  /// wait that follows at once.
  virtual std::shared_ptr<CallState> send_and_wait(
      std::uint64_t request_id, wire::Encoder& enc,
      std::optional<std::chrono::steady_clock::time_point> deadline, CallTimeout timeout) {
    auto state = send(request_id, enc, true);
    if (deadline && state) state->set_deadline(*deadline, timeout);
    return state;
  }
  /// Waits until `state` (a call sent here) is done or `deadline` passes; false on timeout.
  virtual bool wait_for_reply(CallState& state,
                              std::optional<std::chrono::steady_clock::time_point> deadline) {
    return state.wait_here(deadline);
  }
  /// Drops one reference to `object`, counted for client session `session` (fire and forget;
  /// nothing to do if that session has ended: its references went with it).
  virtual void release(std::uint64_t object, std::uint64_t session) = 0;
  /// The client session now open (1 for the first, one more after each reconnection); 0 for a
  /// channel whose references outlive sessions (inside the server).
  virtual std::uint64_t session() const { return 0; }
  /// Why references of an earlier session are stale, for StaleProxyError's message.
  virtual std::string stale_reason() const { return {}; }
  /// Finds the object that `ref` names by its shared name (register_shared) again after each
  /// reconnection, so that its proxies keep working.
  virtual void track_shared(const std::shared_ptr<ObjectRef>& /*ref*/) {}
  /// Hooks for encoding requests.
  virtual wire::RefHooks* request_hooks() { return nullptr; }
  /// Ends the channel: pending and later calls fail with ConnectionError.
  virtual void close() {}
  /// For zmanager::Batch: from hold_calls() until the matching send_held_calls(true), requests
  /// wait to leave together (when a thread waits for a call, or send_held_calls() is called).
  virtual void hold_calls() {}
  virtual void send_held_calls(bool /*stop_holding*/) {}
  /// The timeout of calls made through proxies that set none (ConnectOptions::call_timeout).
  virtual CallTimeout default_call_timeout() const { return std::nullopt; }
  /// Whether the server takes a call's timeout with the call (protocol version 2), so that it
  /// times out a call parked there itself.
  virtual bool sends_call_timeouts() const { return false; }
  /// Inside a server: the instance of object `id` if it is of C++ type `type`; null elsewhere.
  virtual std::shared_ptr<void> local_instance(std::uint64_t /*id*/,
                                               const std::type_info& /*type*/) {
    return nullptr;
  }

  std::uint64_t next_request_id() { return next_id_.fetch_add(1, std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> next_id_{1};
};

/// One reference to a remote object, shared by all copies of a proxy; releasing the last copy
/// releases the reference on the server. A reference belongs to the client session that
/// received it: after a reconnection (a new session) it is stale, unless it names a shared
/// object (register_shared), which the connection finds again and rebinds.
class ObjectRef {
 public:
  ObjectRef(std::shared_ptr<Channel> channel, std::uint64_t id, std::string type,
            std::uint64_t session = 0)
      : channel_(std::move(channel)), id_(id), session_(session), type_(std::move(type)) {}
  ~ObjectRef() {
    if (channel_) channel_->release(id_, session_);
  }
  ObjectRef(const ObjectRef&) = delete;
  ObjectRef& operator=(const ObjectRef&) = delete;

  struct Binding {
    std::uint64_t id;
    std::uint64_t session;
  };
  Binding binding() const {
    std::lock_guard lock(mu_);
    return {id_, session_};
  }
  std::uint64_t id() const { return binding().id; }
  const std::string& type() const { return type_; }
  const std::shared_ptr<Channel>& channel() const { return channel_; }
  /// The name the server shares the object under, if it came from `shared(name)`.
  const std::string& shared_name() const { return shared_name_; }

  /// The id to write into a message `enc`; records the reference's session in `enc`.
  /// StaleProxyError if that session has ended (or `enc` already holds another session's).
  std::uint64_t id_for(wire::Encoder& enc) const;
  /// "Lock object 7": how errors name it.
  std::string describe() const;

  /// Set once, before the channel tracks the reference (track_shared).
  void set_shared_name(std::string name) { shared_name_ = std::move(name); }
  /// The object found again under the shared name, with a reference counted for `session`.
  void rebind(std::uint64_t id, std::uint64_t session) {
    std::lock_guard lock(mu_);
    id_ = id;
    session_ = session;
  }

 private:
  std::shared_ptr<Channel> channel_;
  mutable std::mutex mu_;
  std::uint64_t id_;
  std::uint64_t session_;
  std::string type_;
  std::string shared_name_;
};

/// Marks `ref` as the object shared under `name`, so that its connection finds it again after
/// reconnecting to a restarted server.
inline void remember_shared_name(const std::shared_ptr<ObjectRef>& ref, std::string name) {
  if (!ref) return;
  ref->set_shared_name(std::move(name));
  ref->channel()->track_shared(ref);
}

/// Writes the head of a call body: [op, request_id, object, method, <args follow>, <refs>,
/// <timeout_ms if `with_timeout`>].
void begin_call(wire::Encoder& enc, std::uint64_t request_id, std::uint64_t object,
                std::string_view method, bool with_timeout = false);
/// Appends the reference list (and the timeout, if begin_call said so) that close a call body.
void end_call(wire::Encoder& enc, CallTimeout timeout = std::nullopt);

/// Decodes a reply payload as T, then releases references the payload carried that T did not
/// keep (so a result that is ignored or converted to a plain value does not leak).
template <class T>
T decode_payload(const std::shared_ptr<Channel>& channel, wire::Payload& payload,
                 std::uint64_t session);

class ImportTracker {
 public:
  /// `session`: the client session the payload's references were counted for.
  ImportTracker(std::shared_ptr<Channel> channel, wire::Payload& payload, std::uint64_t session);
  ~ImportTracker();  // releases what was not imported
  wire::RefHooks* hooks() { return &hooks_; }

 private:
  class Hooks : public wire::RefHooks {
   public:
    void on_export(std::uint64_t) override {}
    std::shared_ptr<ObjectRef> on_import(std::uint64_t id, std::string_view type) override;
    std::shared_ptr<Channel> channel;
    std::uint64_t session = 0;
    std::vector<std::uint64_t> pending;  // refs carried and not yet imported
  } hooks_;
};

template <class T>
T decode_payload(const std::shared_ptr<Channel>& channel, wire::Payload& payload,
                 std::uint64_t session) {
  ImportTracker tracker(channel, payload, session);
  wire::DecodeScope scope(payload.blobs, tracker.hooks());
  if constexpr (!std::is_void_v<T>) return wire::convert<T>(payload.value, "result");
}

}  // namespace zmanager::detail
