// zmanager::Proxy<T>: a typed handle on an object that lives in a server.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

#include "zmanager/detail/channel.hpp"
#include "zmanager/future.hpp"

namespace zmanager {

using detail::CallTimeout;

template <class T>
class Proxy;
template <class T>
class Deferred;

namespace detail {

/// Filled in for a class by ZMANAGER_EXPOSE (zmanager/expose.hpp).
template <class T>
struct Expose {
  static constexpr bool exposed = false;
};

template <class T>
concept Exposed = Expose<T>::exposed;

template <class M>
struct MethodTraits;
#define ZMANAGER_METHOD_TRAITS(QUALS)                  \
  template <class C, class R, class... P>              \
  struct MethodTraits<R (C::*)(P...) QUALS> {          \
    using cls = C;                                     \
    using result = R;                                  \
    using params = std::tuple<std::decay_t<P>...>;     \
    static constexpr std::size_t arity = sizeof...(P); \
  };
ZMANAGER_METHOD_TRAITS()
ZMANAGER_METHOD_TRAITS(const)
ZMANAGER_METHOD_TRAITS(noexcept)
ZMANAGER_METHOD_TRAITS(const noexcept)
#undef ZMANAGER_METHOD_TRAITS

/// What a proxy call returns for a method that returns R: values as they are, a proxy for an
/// object the method shares (`std::shared_ptr<U>` of an exposed U, or a `Proxy<U>`), and the
/// eventual value of a Deferred.
template <class R>
struct ProxyResult {
  using type = std::decay_t<R>;
};
template <>
struct ProxyResult<void> {
  using type = void;
};
template <class U>
struct ProxyResult<Deferred<U>> : ProxyResult<U> {};
template <Exposed U>
struct ProxyResult<std::shared_ptr<U>> {
  using type = Proxy<U>;
};
template <class R>
using proxy_result_t = typename ProxyResult<std::decay_t<R>>::type;

/// Packs one argument as the parameter type the server decodes, so both ends agree on the wire
/// type whatever the caller passed (an int literal for a double, a char* for a std::string).
template <class P, class A>
void pack_as(wire::Encoder& enc, A&& a) {
  if constexpr (std::is_same_v<std::decay_t<A>, P>)
    enc.pack(a);
  else
    enc.pack(static_cast<P>(std::forward<A>(a)));
}

template <class Params, class... A, std::size_t... I>
void pack_params(wire::Encoder& enc, std::index_sequence<I...>, A&&... a) {
  enc.packer().pack_array(sizeof...(A));
  (pack_as<std::tuple_element_t<I, Params>>(enc, std::forward<A>(a)), ...);
}

class InvokerBase {
 public:
  InvokerBase() = default;
  explicit InvokerBase(std::shared_ptr<ObjectRef> ref, CallTimeout timeout = std::nullopt)
      : ref_(std::move(ref)), timeout_(timeout) {}

  /// How long each call through this proxy may take (TimeoutError after that); none: the
  /// connection's default (ConnectOptions::call_timeout, ManagerOptions::call_timeout).
  void set_call_timeout(CallTimeout timeout) { timeout_ = timeout; }
  CallTimeout call_timeout() const { return timeout_; }

 protected:
  /// Sends a call: returns its Future, or with `kWait` (a synchronous call) waits and returns
  /// its result.
  template <class R, bool kWait = false, class PackArgs>
  auto send_call(std::string_view method, PackArgs&& pack_args) const {
    if (!ref_) throw Error("call on an empty proxy");
    const auto& channel = ref_->channel();
    CallTimeout timeout = timeout_ ? timeout_ : channel->default_call_timeout();
    bool tell_server = timeout && channel->sends_call_timeouts();
    wire::Encoder enc(channel->request_hooks());
    std::uint64_t id = channel->next_request_id();
    begin_call(enc, id, ref_->id_for(enc), method, tell_server);
    pack_args(enc);
    end_call(enc, tell_server ? timeout : std::nullopt);
    // The clock is read only for a call with a deadline: a read per call showed in profiles.
    std::optional<std::chrono::steady_clock::time_point> deadline;
    if (timeout) deadline = std::chrono::steady_clock::now() + *timeout;
    if constexpr (kWait) {
      return Future<R>(channel->send_and_wait(id, enc, deadline, timeout)).get();
    } else {
      auto state = channel->send(id, enc, true);
      if (deadline && state) state->set_deadline(*deadline, timeout);
      return Future<R>(std::move(state));
    }
  }

  template <auto M, bool kWait = false, class... A>
  auto typed_call(std::string_view method, A&&... a) const {
    using Traits = MethodTraits<decltype(M)>;
    static_assert(sizeof...(A) == Traits::arity, "wrong number of arguments for this method");
    return send_call<proxy_result_t<typename Traits::result>, kWait>(
        method, [&](wire::Encoder& enc) {
          pack_params<typename Traits::params>(enc, std::make_index_sequence<sizeof...(A)>{},
                                               std::forward<A>(a)...);
        });
  }

  template <class R, bool kWait = false, class... A>
  auto dynamic_call(std::string_view method, A&&... a) const {
    return send_call<R, kWait>(method, [&](wire::Encoder& enc) {
      enc.packer().pack_array(sizeof...(A));
      (enc.pack(a), ...);
    });
  }

  std::shared_ptr<ObjectRef> ref_;
  CallTimeout timeout_;
};

template <class T>
class SyncInvoker : public InvokerBase {
 public:
  using InvokerBase::InvokerBase;

 protected:
  template <auto M, class... A>
  decltype(auto) zmanager_invoke(std::string_view method, A&&... a) const {
    return this->template typed_call<M, true>(method, std::forward<A>(a)...);
  }
};

template <class T>
class AsyncInvoker : public InvokerBase {
 public:
  using InvokerBase::InvokerBase;

 protected:
  template <auto M, class... A>
  auto zmanager_invoke(std::string_view method, A&&... a) const {
    return this->template typed_call<M>(method, std::forward<A>(a)...);
  }
};

}  // namespace detail

/// A handle on a remote object with the object's own method names and signatures (generated by
/// ZMANAGER_EXPOSE). Copies are further references to the same object; the object lives while
/// any copy does. Safe to use from several threads at once. A default-constructed proxy is empty.
template <class T>
class Proxy : public detail::Expose<T>::template Methods<detail::SyncInvoker<T>> {
  using Base = typename detail::Expose<T>::template Methods<detail::SyncInvoker<T>>;

 public:
  using element_type = T;
  using Async = typename detail::Expose<T>::template Methods<detail::AsyncInvoker<T>>;

  Proxy() = default;
  explicit Proxy(std::shared_ptr<detail::ObjectRef> ref) : Base(std::move(ref)) {}

  /// The same methods, each returning a Future instead of waiting: `p.async().add(1, 2)`.
  Async async() const { return Async(this->ref_, this->timeout_); }
  /// A copy whose calls each have `timeout` (TimeoutError once it passes; the server drops the
  /// call if it is still parked there): `p.with_timeout(2s).slow_method()`.
  Proxy with_timeout(CallTimeout timeout) const {
    Proxy p = *this;
    p.set_call_timeout(timeout);
    return p;
  }

  /// Calls a method by name with the arguments as given: `p.call<int>("add", 2, 2)`.
  template <class R = void, class... A>
  R call(std::string_view method, A&&... args) const {
    return this->template dynamic_call<R, true>(method, std::forward<A>(args)...);
  }
  template <class R = void, class... A>
  Future<R> call_async(std::string_view method, A&&... args) const {
    return this->template dynamic_call<R>(method, std::forward<A>(args)...);
  }

  explicit operator bool() const noexcept { return this->ref_ != nullptr; }
  /// The server's id for the object and its typeid ("Maths").
  std::uint64_t id() const { return this->ref_ ? this->ref_->id() : 0; }
  std::string_view type_id() const { return this->ref_ ? this->ref_->type() : std::string_view{}; }
  const std::shared_ptr<detail::ObjectRef>& ref() const noexcept { return this->ref_; }

  friend bool operator==(const Proxy& a, const Proxy& b) noexcept {
    return a.ref_ == b.ref_ || (a.ref_ && b.ref_ && a.ref_->channel() == b.ref_->channel() &&
                                a.ref_->id() == b.ref_->id());
  }
};

/// A proxy for an object whose class is not known here: only dynamic calls.
struct Dynamic {};
namespace detail {
template <>
struct Expose<Dynamic> {
  static constexpr bool exposed = false;
  template <class Invoker>
  struct Methods : Invoker {
    using Invoker::Invoker;
  };
};
}  // namespace detail
using DynamicProxy = Proxy<Dynamic>;

namespace detail {
/// Writes a reference to a proxy's object (checking that its session is this one's).
void pack_ref(msgpack::packer<msgpack::sbuffer>& o, const ObjectRef& ref);
/// Writes a reference to object `id` as it is (the server's own references).
void pack_ref(msgpack::packer<msgpack::sbuffer>& o, std::uint64_t id, std::string_view type);
std::shared_ptr<ObjectRef> unpack_ref(const msgpack::object& o);
}  // namespace detail

/// A copy of `proxy` (a Proxy<T>, or the proxy of a built-in such as a QueueProxy) whose calls
/// each have `timeout`: `with_timeout(queue, 2s).get()`.
template <class P>
P with_timeout(P proxy, CallTimeout timeout) {
  proxy.set_call_timeout(timeout);
  return proxy;
}

}  // namespace zmanager

namespace msgpack {
MSGPACK_API_VERSION_NAMESPACE(MSGPACK_DEFAULT_API_NS) {
  namespace adaptor {

  template <class T>
  struct pack<zmanager::Proxy<T>> {
    template <class Stream>
    packer<Stream>& operator()(packer<Stream>& o, const zmanager::Proxy<T>& v) const {
      if (!v) return o.pack_nil();
      if constexpr (std::is_same_v<Stream, msgpack::sbuffer>) {
        zmanager::detail::pack_ref(o, *v.ref());
        return o;
      } else {
        throw zmanager::TypeError("a proxy can only be packed as a call argument or result");
      }
    }
  };

  template <class T>
  struct convert<zmanager::Proxy<T>> {
    const msgpack::object& operator()(const msgpack::object& o, zmanager::Proxy<T>& v) const {
      if (o.type == type::NIL) {
        v = zmanager::Proxy<T>();
        return o;
      }
      v = zmanager::Proxy<T>(zmanager::detail::unpack_ref(o));
      return o;
    }
  };

  }  // namespace adaptor
}
}  // namespace msgpack
