#include "zmanager/value.hpp"

#include <functional>
#include <sstream>

namespace zmanager {

namespace {

// The order of kinds in comparisons and hashes: the variant's own order.
std::string_view kind_of_index(std::size_t index) {
  static constexpr std::string_view kNames[] = {"None",  "bool", "int",  "int",   "float", "str",
                                                "bytes", "list", "dict", "proxy", "opaque"};
  return kNames[index];
}

// Numbers compare by value across bool/int/uint/float, as in Python (True == 1 == 1.0): a dict
// has one key for them, and a list counts them alike.
bool is_number(const Value& v) {
  return v.index() >= 1 && v.index() <= 4;
}
long double number(const Value& v) {
  if (v.holds<bool>()) return v.get<bool>() ? 1 : 0;
  if (v.holds<std::int64_t>()) return static_cast<long double>(v.get<std::int64_t>());
  if (v.holds<std::uint64_t>()) return static_cast<long double>(v.get<std::uint64_t>());
  return static_cast<long double>(v.get<double>());
}

}  // namespace

std::string_view Value::kind() const {
  return kind_of_index(v_.index());
}

std::string Value::repr() const {
  std::ostringstream out;
  visit([&](const auto& x) {
    using X = std::decay_t<decltype(x)>;
    if constexpr (std::is_same_v<X, std::monostate>)
      out << "None";
    else if constexpr (std::is_same_v<X, bool>)
      out << (x ? "True" : "False");
    else if constexpr (std::is_same_v<X, std::string>)
      out << '\'' << x << '\'';
    else if constexpr (std::is_same_v<X, Bytes>)
      out << "b'" << x.view() << '\'';
    else if constexpr (std::is_same_v<X, Array>) {
      out << '[';
      for (std::size_t i = 0; i < x.size(); ++i) out << (i ? ", " : "") << x[i].repr();
      out << ']';
    } else if constexpr (std::is_same_v<X, Map>) {
      out << '{';
      for (std::size_t i = 0; i < x.size(); ++i)
        out << (i ? ", " : "") << x[i].first.repr() << ": " << x[i].second.repr();
      out << '}';
    } else if constexpr (std::is_same_v<X, Ref>) {
      if (x.ref)
        out << "<proxy " << x.ref->type() << ' ' << x.ref->id() << '>';
      else
        out << "<empty proxy>";
    } else if constexpr (std::is_same_v<X, Opaque>)
      out << "<opaque " << x.bytes.size() << " bytes>";
    else
      out << x;
  });
  return out.str();
}

bool operator==(const Value& a, const Value& b) {
  return (a <=> b) == 0;
}

std::strong_ordering operator<=>(const Value& a, const Value& b) {
  if (is_number(a) && is_number(b)) {
    long double l = number(a), r = number(b);
    if (l < r) return std::strong_ordering::less;
    if (l > r) return std::strong_ordering::greater;
    return std::strong_ordering::equal;
  }
  if (a.index() != b.index()) return a.index() <=> b.index();
  return a.visit([&](const auto& l) -> std::strong_ordering {
    using X = std::decay_t<decltype(l)>;
    const auto& r = b.get<X>();
    if constexpr (std::is_same_v<X, std::monostate>) {
      return std::strong_ordering::equal;
    } else if constexpr (std::is_same_v<X, Bytes>) {
      return l.view() <=> r.view();
    } else if constexpr (std::is_same_v<X, Value::Array>) {
      return std::lexicographical_compare_three_way(l.begin(), l.end(), r.begin(), r.end());
    } else if constexpr (std::is_same_v<X, Value::Map>) {
      return std::lexicographical_compare_three_way(l.begin(), l.end(), r.begin(), r.end(),
                                                    [](const auto& p, const auto& q) {
                                                      if (auto c = p.first <=> q.first; c != 0)
                                                        return c;
                                                      return p.second <=> q.second;
                                                    });
    } else if constexpr (std::is_same_v<X, Value::Ref>) {
      std::uint64_t li = l.ref ? l.ref->id() : 0, ri = r.ref ? r.ref->id() : 0;
      return li <=> ri;
    } else if constexpr (std::is_same_v<X, Value::Opaque>) {
      return l.bytes <=> r.bytes;
    } else if constexpr (std::is_same_v<X, bool> || std::is_same_v<X, std::string>) {
      return l <=> r;
    } else {
      return std::strong_ordering::equal;  // numbers: compared above
    }
  });
}

std::size_t Value::hash() const {
  if (is_number(*this)) {
    // Equal numbers hash alike whatever their kind (1, 1u and 1.0).
    long double n = number(*this);
    auto as_int = static_cast<std::int64_t>(n);
    if (static_cast<long double>(as_int) == n) return std::hash<std::int64_t>{}(as_int);
    return std::hash<long double>{}(n);
  }
  std::size_t seed = v_.index();
  auto mix = [&](std::size_t h) { seed ^= h + 0x9e3779b97f4a7c15ULL + (seed << 6) + (seed >> 2); };
  visit([&](const auto& x) {
    using X = std::decay_t<decltype(x)>;
    if constexpr (std::is_same_v<X, bool>)
      mix(x);
    else if constexpr (std::is_same_v<X, std::string>)
      mix(std::hash<std::string>{}(x));
    else if constexpr (std::is_same_v<X, Bytes>)
      mix(std::hash<std::string_view>{}(x.view()));
    else if constexpr (std::is_same_v<X, Array>) {
      for (const auto& e : x) mix(e.hash());
    } else if constexpr (std::is_same_v<X, Map>) {
      for (const auto& [k, v] : x) {
        mix(k.hash());
        mix(v.hash());
      }
    } else if constexpr (std::is_same_v<X, Ref>)
      mix(x.ref ? x.ref->id() : 0);
    else if constexpr (std::is_same_v<X, Opaque>)
      mix(std::hash<std::string>{}(x.bytes));
  });
  return seed;
}

namespace detail {

CarriedRefs::CarriedRefs(const Value& v) {
  std::function<void(const Value&)> collect = [&](const Value& x) {
    if (x.holds<Value::Ref>()) {
      if (x.get<Value::Ref>().ref) refs_.push_back(x.get<Value::Ref>().ref);
    } else if (x.holds<Value::Array>()) {
      for (const auto& e : x.get<Value::Array>()) collect(e);
    } else if (x.holds<Value::Map>()) {
      for (const auto& [k, e] : x.get<Value::Map>()) {
        collect(k);
        collect(e);
      }
    }
  };
  collect(v);
}

std::shared_ptr<ObjectRef> CarriedRefs::on_import(std::uint64_t id, std::string_view) {
  for (const auto& r : refs_)
    if (r->id() == id) return r;
  throw ProtocolError("a value refers to object " + std::to_string(id) + " it does not hold");
}

}  // namespace detail
}  // namespace zmanager

namespace msgpack {
MSGPACK_API_VERSION_NAMESPACE(MSGPACK_DEFAULT_API_NS) {
  namespace adaptor {

  const msgpack::object& convert<zmanager::Value>::operator()(const msgpack::object& o,
                                                              zmanager::Value& v) const {
    using zmanager::Value;
    switch (o.type) {
      case type::NIL:
        v = Value();
        break;
      case type::BOOLEAN:
        v = Value(o.via.boolean);
        break;
      case type::POSITIVE_INTEGER:
        v = Value(o.via.u64);
        break;
      case type::NEGATIVE_INTEGER:
        v = Value(o.via.i64);
        break;
      case type::FLOAT32:
      case type::FLOAT64:
        v = Value(o.via.f64);
        break;
      case type::STR:
        v = Value(std::string(o.via.str.ptr, o.via.str.size));
        break;
      case type::BIN:
        v = Value(o.as<zmanager::Bytes>());
        break;
      case type::ARRAY: {
        Value::Array a;
        a.reserve(o.via.array.size);
        for (std::uint32_t i = 0; i < o.via.array.size; ++i)
          a.push_back(o.via.array.ptr[i].as<Value>());
        v = Value(std::move(a));
        break;
      }
      case type::MAP: {
        Value::Map m;
        m.reserve(o.via.map.size);
        for (std::uint32_t i = 0; i < o.via.map.size; ++i)
          m.emplace_back(o.via.map.ptr[i].key.as<Value>(), o.via.map.ptr[i].val.as<Value>());
        v = Value(std::move(m));
        break;
      }
      case type::EXT:
        switch (o.via.ext.type()) {
          case zmanager::wire::kExtBlob:
            v = Value(o.as<zmanager::Bytes>());
            break;
          case zmanager::wire::kExtRef:
            v = Value(zmanager::DynamicProxy(zmanager::detail::unpack_ref(o)));
            break;
          case zmanager::wire::kExtOpaque:
            v = Value(Value::Opaque{std::string(o.via.ext.data(), o.via.ext.size)});
            break;
          default:
            throw msgpack::type_error();
        }
        break;
    }
    return o;
  }

  }  // namespace adaptor
}
}  // namespace msgpack
