// ZMANAGER_EXPOSE: one declaration of a class's remote methods. It feeds both the server's
// dispatch table (name -> invoker, arity and argument types checked) and zmanager::Proxy<T>,
// whose member functions get the same names and parameter types.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include "zmanager/call.hpp"
#include "zmanager/detail/map_macro.hpp"
#include "zmanager/proxy.hpp"

namespace zmanager::detail {

using MethodInvoker = void (*)(void* self, const msgpack::object& args, CallContext& ctx);

struct MethodEntry {
  std::string name;
  MethodInvoker invoke;
  std::size_t arity;
};

/// The methods a server can run on objects of one class.
struct DispatchTable {
  std::string class_name;
  const std::type_info* type = nullptr;  // the C++ class, to check what a local reference holds
  std::vector<MethodEntry> methods;
  bool short_calls = false;  // TypeOptions::short_calls
  /// The class's `on_session_end(std::uint64_t session)`, if it has one: the server runs it on
  /// the object (under its monitor) when a client session that called the object ends, so that
  /// what the session held there (a lock, permits, parked calls) is given back.
  void (*session_ended)(void* self, std::uint64_t session) = nullptr;

  const MethodEntry* find(std::string_view name) const {
    for (const auto& m : methods)
      if (m.name == name) return &m;
    return nullptr;
  }
  /// A copy restricted to the named methods (Python's `exposed=`); unknown names are a
  /// ValueError, so a typo does not silently hide a method.
  std::shared_ptr<DispatchTable> restricted(const std::vector<std::string>& exposed) const;
};

/// Decodes a msgpack argument array as the tuple Params, or throws TypeError saying which
/// argument of `where` (text, or a function making it: see wire::describe) was wrong.
template <class Params, class Where, std::size_t... I>
Params decode_args_impl([[maybe_unused]] const msgpack::object_array& a,
                        [[maybe_unused]] const Where& where, std::index_sequence<I...>) {
  return Params{wire::convert<std::tuple_element_t<I, Params>>(
      a.ptr[I], [&] { return wire::describe(where) + " argument " + std::to_string(I + 1); })...};
}

template <class Params, class Where = std::string_view>
Params decode_args(const msgpack::object& args, const Where& where) {
  constexpr std::size_t n = std::tuple_size_v<Params>;
  if (args.type != msgpack::type::ARRAY)
    throw TypeError(wire::describe(where) + ": arguments must be a list");
  if (args.via.array.size != n)
    throw TypeError(wire::describe(where) + " takes " + std::to_string(n) + " argument" +
                    (n == 1 ? "" : "s") + " (" + std::to_string(args.via.array.size) + " given)");
  return decode_args_impl<Params>(args.via.array, where, std::make_index_sequence<n>{});
}

template <class T>
struct IsSharedExposed : std::false_type {};
template <Exposed U>
struct IsSharedExposed<std::shared_ptr<U>> : std::true_type {};

template <Exposed T>
const DispatchTable& dispatch_table();

template <class T>
void pack_result(wire::Encoder& enc, const void* value) {
  if constexpr (std::is_void_v<T>) {
    enc.packer().pack_nil();
  } else if constexpr (IsSharedExposed<T>::value) {
    // Python's method_to_typeid: the object the method returns is shared, not copied.
    const auto& object = *static_cast<const T*>(value);
    if (!object) {
      enc.packer().pack_nil();
      return;
    }
    if (!enc.hooks()) throw TypeError("a shared object can only be returned by a server method");
    auto [id, type] =
        enc.hooks()->export_object(object, dispatch_table<typename T::element_type>());
    pack_ref(enc.packer(), id, type);
  } else {
    enc.pack(*static_cast<const T*>(value));
  }
}

template <class R>
void reply_with(CallContext& ctx, R& result) {
  using D = std::decay_t<R>;
  if constexpr (requires { result.is_pending(); }) {
    if (result.is_pending()) return;
    if constexpr (requires { result.value(); }) {
      reply_with(ctx, result.value());
    } else {
      ctx.target()->reply(&pack_result<void>, nullptr);
    }
  } else {
    // The method's own result, destroyed after the reply.
    ctx.target()->reply(&pack_result<D>, &result, ReplyTarget::Lifetime::kTemporary);
  }
}

template <auto M>
void invoke_method(void* self, const msgpack::object& args, CallContext& ctx) {
  using Traits = MethodTraits<decltype(M)>;
  using Class = typename Traits::cls;
  auto where = [&ctx] {
    return std::string(ctx.object_type()) + "." + std::string(ctx.method()) + "()";
  };
  auto params = decode_args<typename Traits::params>(args, where);
  // The arguments hold their bytes alone now: the message's hold on them goes.
  if (auto* decoding = wire::DecodeScope::current()) decoding->release_blobs();
  auto& object = *static_cast<Class*>(self);
  auto call = [&](auto&&... p) -> decltype(auto) { return (object.*M)(std::move(p)...); };
  if constexpr (std::is_void_v<typename Traits::result>) {
    std::apply(call, std::move(params));
    ctx.target()->reply(&pack_result<void>, nullptr);
  } else {
    auto result = std::apply(call, std::move(params));
    reply_with(ctx, result);
  }
}

template <Exposed T>
const DispatchTable& dispatch_table() {
  static const DispatchTable table = [] {
    DispatchTable t;
    t.class_name = std::string(Expose<T>::name);
    t.type = &typeid(T);
    Expose<T>::for_each_method([&]<auto M>(std::string_view name) {
      t.methods.push_back({std::string(name), &invoke_method<M>, MethodTraits<decltype(M)>::arity});
    });
    if constexpr (requires(T & object, std::uint64_t session) { object.on_session_end(session); }) {
      t.session_ended = [](void* self, std::uint64_t session) {
        static_cast<T*>(self)->on_session_end(session);
      };
    }
    return t;
  }();
  return table;
}

/// The object behind a reference that a server method received, when it lives in this same
/// server and is a T; null otherwise. Lets one built-in object work on another's state directly
/// (a Condition on the Lock it was given).
template <Exposed T>
std::shared_ptr<T> local_instance(const std::shared_ptr<ObjectRef>& ref) {
  if (!ref || !ref->channel()) return nullptr;
  return std::static_pointer_cast<T>(ref->channel()->local_instance(ref->id(), typeid(T)));
}

}  // namespace zmanager::detail

/// Declares the remote methods of `Class` (at global namespace scope, after the class):
///   ZMANAGER_EXPOSE(MathsClass, add, mul)
/// Overloaded methods cannot be exposed (their address is ambiguous). A proxy reserves the names
/// async, call, call_async, id, type_id, ref, with_timeout, set_call_timeout and call_timeout
/// for itself.
#define ZMANAGER_EXPOSE(Class, ...)                                         \
  template <>                                                               \
  struct zmanager::detail::Expose<Class> {                                  \
    static constexpr bool exposed = true;                                   \
    static constexpr std::string_view name = #Class;                        \
    template <class Visitor>                                                \
    static void for_each_method(Visitor&& visit) {                          \
      ZMANAGER_DETAIL_MAP(ZMANAGER_DETAIL_VISIT_METHOD, Class, __VA_ARGS__) \
    }                                                                       \
    template <class Invoker>                                                \
    struct Methods : Invoker {                                              \
      using Invoker::Invoker;                                               \
      ZMANAGER_DETAIL_MAP(ZMANAGER_DETAIL_PROXY_METHOD, Class, __VA_ARGS__) \
    };                                                                      \
  };

#define ZMANAGER_DETAIL_VISIT_METHOD(Class, method) \
  visit.template operator()<&Class::method>(std::string_view(#method));

#define ZMANAGER_DETAIL_PROXY_METHOD(Class, method)                                  \
  template <class... A>                                                              \
  decltype(auto) method(A&&... a) const {                                            \
    return this->template zmanager_invoke<&Class::method>(std::string_view(#method), \
                                                          std::forward<A>(a)...);    \
  }
