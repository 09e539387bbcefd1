// The server side of one call: where its reply goes, and how a method can reply later.
#pragma once

#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "zmanager/proxy.hpp"

namespace zmanager {

namespace detail {

/// Where the reply to one call goes (implemented by the server). A target replies at most once;
/// it may be used from any thread.
class ReplyTarget {
 public:
  using PackFn = void (*)(wire::Encoder& enc, const void* value);
  /// Whether the value outlives the reply. A temporary's bytes may be sent without a copy when
  /// nothing else shares them; a borrowed value may be changed after reply() returns, while
  /// its frames are still being sent.
  enum class Lifetime { kBorrowed, kTemporary };
  virtual ~ReplyTarget() = default;
  /// Encodes the result with `pack(enc, value)` and sends it. Returns false if already replied
  /// or if the caller can no longer receive it.
  virtual bool reply(PackFn pack, const void* value, Lifetime lifetime = Lifetime::kBorrowed) = 0;
  virtual bool fail(std::exception_ptr error) = 0;
  virtual std::string_view method() const = 0;
  /// Who made the call: the client session's id, or an internal owner for calls made by objects
  /// inside the server. Lock ownership is recorded against it.
  virtual std::uint64_t caller() const = 0;
  /// False once the caller's session has ended or the call has been answered (its deadline
  /// passed): a reply would reach nobody.
  virtual bool caller_alive() const { return true; }
};

template <class T>
void pack_result(wire::Encoder& enc, const void* value);

}  // namespace detail

/// A reply owed to a caller, kept by a method that returned `Deferred<T>::pending()`. Any later
/// call (on this object or another) may `send()` it; this is how a call waits on the server
/// without holding a thread. Destroying an unsent Responder fails the call with RuntimeError.
template <class T>
class Responder {
 public:
  Responder() = default;
  explicit Responder(std::shared_ptr<detail::ReplyTarget> target) : target_(std::move(target)) {}
  Responder(Responder&&) noexcept = default;
  Responder& operator=(Responder&& other) noexcept {
    if (this != &other) {
      drop();
      target_ = std::move(other.target_);
    }
    return *this;
  }
  ~Responder() { drop(); }

  bool pending() const noexcept { return target_ != nullptr; }
  /// Whether the caller can still receive the reply (its session has not ended). A waiter whose
  /// caller is gone should not be handed anything: it would be lost with the reply.
  bool caller_alive() const { return target_ && target_->caller_alive(); }

  /// Answers the call; false if nobody will receive the answer (the call was answered already,
  /// by its deadline, or its caller's session has ended): what `value` grants must then be
  /// taken back or given to someone else.
  template <class U = T>
  requires(!std::is_void_v<U>) bool send(const U& value) {
    auto target = std::move(target_);
    return target && target->reply(&detail::pack_result<T>, &value);
  }
  /// A value handed over (`send(queue.pop())`): its bytes may go out without a copy.
  template <class U = T>
  requires(!std::is_void_v<U> && std::is_same_v<U, T>) bool send(U&& value) {
    auto target = std::move(target_);
    return target && target->reply(&detail::pack_result<T>, &value,
                                   detail::ReplyTarget::Lifetime::kTemporary);
  }
  bool send() requires std::is_void_v<T> {
    auto target = std::move(target_);
    return target && target->reply(&detail::pack_result<void>, nullptr);
  }
  void fail(std::exception_ptr error) {
    auto target = std::move(target_);
    if (target) target->fail(std::move(error));
  }
  template <class E>
  void fail(const E& error) {
    fail(std::make_exception_ptr(error));
  }

 private:
  void drop() {
    if (target_) fail(RuntimeError("the server dropped this call without replying"));
  }
  std::shared_ptr<detail::ReplyTarget> target_;
};

/// What a method returns when it may answer later: either a value now, or `pending()` after
/// handing the call's Responder (from `defer<T>()`) to whoever will answer it.
template <class T>
class Deferred {
 public:
  Deferred(T value) : value_(std::move(value)) {}  // NOLINT: a value converts implicitly
  static Deferred pending() { return Deferred(); }
  bool is_pending() const { return !value_; }
  T& value() { return *value_; }

 private:
  Deferred() = default;
  std::optional<T> value_;
};
template <>
class Deferred<void> {
 public:
  Deferred() = default;
  static Deferred pending() {
    Deferred d;
    d.pending_ = true;
    return d;
  }
  bool is_pending() const { return pending_; }

 private:
  bool pending_ = false;
};

namespace detail {
/// What the server offers the object a call runs on (implemented by the server).
class ObjectServices {
 public:
  virtual ~ObjectServices() = default;
  /// Runs `task` on the object's strand (under its monitor) at `when`, or never if the object
  /// is gone by then.
  virtual void schedule(std::chrono::steady_clock::time_point when, std::function<void()> task) = 0;
};
}  // namespace detail

/// The call the current thread is executing on the server.
class CallContext {
 public:
  CallContext(std::shared_ptr<detail::ReplyTarget> target, std::string_view object_type,
              detail::ObjectServices* services = nullptr)
      : target_(std::move(target)), object_type_(object_type), services_(services) {}
  std::string_view method() const { return target_->method(); }
  std::string_view object_type() const { return object_type_; }
  std::uint64_t caller() const { return target_->caller(); }
  const std::shared_ptr<detail::ReplyTarget>& target() const { return target_; }
  detail::ObjectServices* services() const { return services_; }

  /// The running call on this thread (throws outside a server method).
  static CallContext& current();

  class Scope {
   public:
    explicit Scope(CallContext& ctx);
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    CallContext* previous_;
  };

 private:
  std::shared_ptr<detail::ReplyTarget> target_;
  std::string_view object_type_;
  detail::ObjectServices* services_;
};

/// Runs `task` on the running call's object, under its monitor, once `delay` has passed: how a
/// parked call gets a timeout without a thread waiting for it. Nothing runs if the object has
/// been destroyed by then. Only inside a server method.
void schedule_after(std::chrono::steady_clock::duration delay, std::function<void()> task);

/// Takes over the reply of the running call: the method then returns `Deferred<T>::pending()`.
template <class T>
Responder<T> defer() {
  return Responder<T>(CallContext::current().target());
}

}  // namespace zmanager
