// What a proxy talks through (internal to the library, public only because templates use it).
// A Channel is either a connection to a remote server or, inside the server, a direct path to
// its own objects; proxies and futures do not know which.
#pragma once

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

  void complete(wire::Payload payload);
  void fail(std::exception_ptr error);
  /// The call's deadline: take() raises TimeoutError when no answer came by then (plus
  /// kDeadlineGrace). Set by the sender before anyone waits.
  void set_deadline(std::chrono::steady_clock::time_point deadline, CallTimeout timeout);

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

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::optional<wire::Payload> payload_;
  std::exception_ptr error_;
  std::weak_ptr<Channel> channel_;
  std::optional<std::chrono::steady_clock::time_point> deadline_;
  CallTimeout timeout_;
};

class Channel : public std::enable_shared_from_this<Channel> {
 public:
  virtual ~Channel() = default;

  /// Sends a request whose body `enc` was written with begin_call(); the result arrives in the
  /// returned state. With `want_reply` false the server sends nothing back.
  virtual std::shared_ptr<CallState> send(std::uint64_t request_id, wire::Encoder& enc,
                                          bool want_reply) = 0;
  /// Waits until `state` (a call sent here) is done or `deadline` passes; false on timeout.
  virtual bool wait_for_reply(CallState& state,
                              std::optional<std::chrono::steady_clock::time_point> deadline) {
    return state.wait_here(deadline);
  }
  /// Drops one reference to `object` (fire and forget).
  virtual void release(std::uint64_t object) = 0;
  /// Hooks for encoding requests.
  virtual wire::RefHooks* request_hooks() { return nullptr; }
  /// Ends the channel: pending and later calls fail with ConnectionError.
  virtual void close() {}
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
/// releases the reference on the server.
class ObjectRef {
 public:
  ObjectRef(std::shared_ptr<Channel> channel, std::uint64_t id, std::string type)
      : channel_(std::move(channel)), id_(id), type_(std::move(type)) {}
  ~ObjectRef() {
    if (channel_) channel_->release(id_);
  }
  ObjectRef(const ObjectRef&) = delete;
  ObjectRef& operator=(const ObjectRef&) = delete;

  std::uint64_t id() const { return id_; }
  const std::string& type() const { return type_; }
  const std::shared_ptr<Channel>& channel() const { return channel_; }

 private:
  std::shared_ptr<Channel> channel_;
  std::uint64_t id_;
  std::string type_;
};

/// Writes the head of a call body: [op, request_id, object, method, <args follow>, <refs>,
/// <timeout_ms if `with_timeout`>].
void begin_call(wire::Encoder& enc, std::uint64_t request_id, std::uint64_t object,
                std::string_view method, bool with_timeout = false);
/// Appends the reference list (and the timeout, if begin_call said so) that close a call body.
void end_call(wire::Encoder& enc, CallTimeout timeout = std::nullopt);

/// Decodes a reply payload as T, then releases references the payload carried that T did not
/// keep (so a result that is ignored or converted to a plain value does not leak).
template <class T>
T decode_payload(const std::shared_ptr<Channel>& channel, wire::Payload& payload);

class ImportTracker {
 public:
  explicit ImportTracker(std::shared_ptr<Channel> channel, wire::Payload& payload);
  ~ImportTracker();  // releases what was not imported
  wire::RefHooks* hooks() { return &hooks_; }

 private:
  class Hooks : public wire::RefHooks {
   public:
    void on_export(std::uint64_t) override {}
    std::shared_ptr<ObjectRef> on_import(std::uint64_t id, std::string_view type) override;
    std::shared_ptr<Channel> channel;
    std::vector<std::uint64_t> pending;  // refs carried and not yet imported
  } hooks_;
};

template <class T>
T decode_payload(const std::shared_ptr<Channel>& channel, wire::Payload& payload) {
  ImportTracker tracker(channel, payload);
  wire::DecodeScope scope(payload.blobs, tracker.hooks());
  if constexpr (!std::is_void_v<T>) return wire::convert<T>(payload.value, "result");
}

}  // namespace zmanager::detail
