// zmanager::Value: a dynamic value, what Python code would hold in a variable. It carries any
// msgpack value plus what zmanager adds: bytes, object references (live proxies) and opaque
// C++ values. Containers on the server store Values, so typed C++ proxies, dynamic proxies and
// clients in other languages all see the same data.
#pragma once

#include <compare>
#include <concepts>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "zmanager/proxy.hpp"
#include "zmanager/wire/codec.hpp"

namespace zmanager {

namespace detail {
/// A T on the heap with value semantics (copies are deep). A Value keeps everything bigger than
/// a number in one of these, so that a Value is 16 bytes: a server's containers hold millions.
template <class T>
class Boxed {
 public:
  explicit Boxed(T value) : p_(std::make_unique<T>(std::move(value))) {}
  Boxed(const Boxed& other) : p_(other.p_ ? std::make_unique<T>(*other.p_) : nullptr) {}
  Boxed(Boxed&&) noexcept = default;
  Boxed& operator=(const Boxed& other) {
    if (this != &other) *this = Boxed(other);
    return *this;
  }
  Boxed& operator=(Boxed&&) noexcept = default;
  const T& operator*() const { return *p_; }

 private:
  std::unique_ptr<T> p_;
};
template <class T>
struct IsBoxed : std::false_type {};
template <class T>
struct IsBoxed<Boxed<T>> : std::true_type {};
}  // namespace detail

class Value {
 public:
  using Array = std::vector<Value>;
  using Map = std::vector<std::pair<Value, Value>>;  // insertion order, as a Python dict
  /// An object reference: holding it holds the object.
  struct Ref {
    std::shared_ptr<detail::ObjectRef> ref;
  };
  /// A value only C++ can read (a Boost.Serialization archive): kept as its bytes.
  struct Opaque {
    std::string bytes;
  };

  Value() = default;  // None
  Value(std::nullptr_t) {}
  Value(const Value&) = default;
  Value& operator=(const Value&) = default;
  /// A moved-from Value is None.
  Value(Value&& other) noexcept : v_(std::exchange(other.v_, std::monostate{})) {}
  Value& operator=(Value&& other) noexcept {
    v_ = std::exchange(other.v_, std::monostate{});
    return *this;
  }
  Value(bool b) : v_(b) {}
  template <class I>
  requires(std::is_integral_v<I> && !std::is_same_v<I, bool>) Value(I i) {
    if constexpr (std::is_signed_v<I>)
      v_ = static_cast<std::int64_t>(i);
    else if (i <= static_cast<std::uint64_t>(INT64_MAX))
      v_ = static_cast<std::int64_t>(i);
    else
      v_ = static_cast<std::uint64_t>(i);
  }
  Value(double d) : v_(d) {}
  Value(std::string s) : v_(detail::Boxed<std::string>(std::move(s))) {}
  Value(std::string_view s) : Value(std::string(s)) {}
  Value(const char* s) : Value(std::string(s)) {}
  Value(Bytes b) : v_(detail::Boxed<Bytes>(std::move(b))) {}
  Value(Array a) : v_(detail::Boxed<Array>(std::move(a))) {}
  Value(Map m) : v_(detail::Boxed<Map>(std::move(m))) {}
  /// A proxy (Proxy<T>, or a built-in's typed proxy such as DictProxy): a live reference.
  template <class P>
  requires requires(const P& p) {
    { p.ref() } -> std::convertible_to<std::shared_ptr<detail::ObjectRef>>;
  }
  Value(const P& p) {
    if (p.ref()) v_ = detail::Boxed<Ref>(Ref{p.ref()});
  }
  Value(Ref r) : v_(detail::Boxed<Ref>(std::move(r))) {}
  Value(Opaque o) : v_(detail::Boxed<Opaque>(std::move(o))) {}

  /// Any value msgpack can pack (structs with MSGPACK_DEFINE, containers, ...).
  template <class T>
  static Value from(const T& value);

  /// The value as T; TypeError naming both types when it is something else.
  template <class T>
  T as() const;

  bool is_none() const { return std::holds_alternative<std::monostate>(v_); }
  /// Alt: std::monostate, bool, std::int64_t, std::uint64_t, double, std::string, Bytes, Array,
  /// Map, Ref or Opaque.
  template <class Alt>
  bool holds() const {
    return std::holds_alternative<Stored<Alt>>(v_);
  }
  template <class Alt>
  const Alt& get() const {
    if constexpr (detail::IsBoxed<Stored<Alt>>::value)
      return *std::get<Stored<Alt>>(v_);
    else
      return std::get<Alt>(v_);
  }
  /// Calls f with what the Value holds (one of the types holds() names).
  template <class F>
  decltype(auto) visit(F&& f) const {
    return std::visit(
        [&](const auto& x) -> decltype(auto) {
          if constexpr (detail::IsBoxed<std::decay_t<decltype(x)>>::value)
            return f(*x);
          else
            return f(x);
        },
        v_);
  }
  /// Which of those it holds, in that order.
  std::size_t index() const { return v_.index(); }
  /// Python-style name of what this holds: "None", "int", "str", "list", "dict", "proxy", ...
  std::string_view kind() const;
  /// A short rendering for messages: 'a', 3, [1, 2], <proxy Maths 7>.
  std::string repr() const;

  friend bool operator==(const Value& a, const Value& b);
  /// A total order (kinds first, then values), so Values can be sorted and used as keys.
  friend std::strong_ordering operator<=>(const Value& a, const Value& b);
  std::size_t hash() const;

 private:
  // The order of the alternatives is the order of kinds in comparisons.
  using Storage =
      std::variant<std::monostate, bool, std::int64_t, std::uint64_t, double,
                   detail::Boxed<std::string>, detail::Boxed<Bytes>, detail::Boxed<Array>,
                   detail::Boxed<Map>, detail::Boxed<Ref>, detail::Boxed<Opaque>>;
  template <class Alt>
  using Stored =
      std::conditional_t<std::is_arithmetic_v<Alt> || std::is_same_v<Alt, std::monostate>, Alt,
                         detail::Boxed<Alt>>;

  Storage v_;
};

namespace detail {
template <class T>
struct IsProxy : std::false_type {};
template <class U>
struct IsProxy<Proxy<U>> : std::true_type {};
/// Converts a Value to T through msgpack, reporting mismatches as TypeError.
template <class T>
T value_as(const Value& v);
}  // namespace detail

}  // namespace zmanager

template <>
struct std::hash<zmanager::Value> {
  std::size_t operator()(const zmanager::Value& v) const { return v.hash(); }
};

namespace msgpack {
MSGPACK_API_VERSION_NAMESPACE(MSGPACK_DEFAULT_API_NS) {
  namespace adaptor {

  template <>
  struct pack<zmanager::Value> {
    template <class Stream>
    packer<Stream>& operator()(packer<Stream>& o, const zmanager::Value& v) const {
      if constexpr (!std::is_same_v<Stream, msgpack::sbuffer>) {
        throw zmanager::TypeError("a Value can only be packed into a zmanager message");
      } else {
        v.visit([&](const auto& x) {
          using X = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<X, std::monostate>) {
            o.pack_nil();
          } else if constexpr (std::is_same_v<X, zmanager::Value::Map>) {
            o.pack_map(static_cast<std::uint32_t>(x.size()));
            for (const auto& [k, val] : x) {
              o.pack(k);
              o.pack(val);
            }
          } else if constexpr (std::is_same_v<X, zmanager::Value::Ref>) {
            if (!x.ref) {
              o.pack_nil();
            } else {
              zmanager::detail::pack_ref(o, *x.ref);
            }
          } else if constexpr (std::is_same_v<X, zmanager::Value::Opaque>) {
            o.pack_ext(x.bytes.size(), zmanager::wire::kExtOpaque);
            o.pack_ext_body(x.bytes.data(), static_cast<std::uint32_t>(x.bytes.size()));
          } else {
            o.pack(x);
          }
        });
      }
      return o;
    }
  };

  template <>
  struct convert<zmanager::Value> {
    const msgpack::object& operator()(const msgpack::object& o, zmanager::Value& v) const;
  };

  }  // namespace adaptor
}
}  // namespace msgpack

namespace zmanager {

template <class T>
Value Value::from(const T& value) {
  if constexpr (std::is_constructible_v<Value, const T&>) {
    return Value(value);
  } else {
    // Through msgpack, inside a private message so that bytes and references carry over.
    wire::Encoder enc;
    enc.pack(value);
    auto& body = enc.body();
    msgpack::object_handle h = msgpack::unpack(body.data(), body.size());
    wire::DecodeScope scope(enc.blobs(), nullptr);
    return h.get().as<Value>();
  }
}

template <class T>
T Value::as() const {
  if constexpr (std::is_same_v<T, Value>) {
    return *this;
  } else if constexpr (detail::IsProxy<T>::value) {
    if (is_none()) return T();
    if (!holds<Ref>()) throw TypeError("expected proxy, got " + std::string(kind()));
    return T(get<Ref>().ref);
  } else {
    return detail::value_as<T>(*this);
  }
}

namespace detail {
/// Lets a Value's own references come back out of the private message it is converted through,
/// without counting them again on the server.
class CarriedRefs : public wire::RefHooks {
 public:
  explicit CarriedRefs(const Value& v);
  std::shared_ptr<ObjectRef> on_import(std::uint64_t id, std::string_view type) override;

 private:
  std::vector<std::shared_ptr<ObjectRef>> refs_;
};

template <class T>
T value_as(const Value& v) {
  wire::Encoder enc;
  enc.pack(v);
  auto& body = enc.body();
  msgpack::object_handle h = msgpack::unpack(body.data(), body.size());
  CarriedRefs carried(v);
  wire::DecodeScope scope(enc.blobs(), &carried);
  return wire::convert<T>(h.get(), "value");
}
}  // namespace detail

}  // namespace zmanager
