// Runs scenarios.txt against zmanager::SyncManager and prints what python_runner.py prints for
// Python's SyncManager: the same script grammar, the same canonical rendering of results, errors
// by their Python names. crosscheck_test.sh compares the two outputs line by line.
//
// Usage: zmanager_runner SCENARIOS   (CROSSCHECK_MESSAGES=1 prints error messages too)

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

#include "zmanager/errors.hpp"
#include "zmanager/sync.hpp"
#include "zmanager/value.hpp"

namespace {

using zmanager::Value;
using Args = std::vector<Value>;
using namespace std::chrono_literals;

// The same bounds as python_runner.py.
constexpr auto kJoinTimeout = 10s;
constexpr auto kUntilTimeout = 10s;
constexpr auto kUntilPoll = 5ms;
constexpr auto kDoneTimeout = 5s;
constexpr auto kDoneGrace = 200ms;

/// A mistake in the script itself (not a behaviour being checked): the run stops.
class ScriptError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

bool show_messages() {
  const char* v = std::getenv("CROSSCHECK_MESSAGES");
  return v && std::string_view(v) == "1";
}

std::string trim(std::string_view s) {
  auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return {};
  auto e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

std::vector<std::string> words(const std::string& s) {
  std::istringstream in(s);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

/// Splits off the first `n` words; the rest of the line (the arguments) stays one string.
std::vector<std::string> split_head(const std::string& line, std::size_t n) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (out.size() < n) {
    i = line.find_first_not_of(" \t", i);
    if (i == std::string::npos) return out;
    auto e = line.find_first_of(" \t", i);
    out.push_back(line.substr(i, e == std::string::npos ? std::string::npos : e - i));
    i = e == std::string::npos ? line.size() : e;
  }
  out.push_back(trim(std::string_view(line).substr(i)));
  return out;
}

// ---- literals (the grammar python_runner.py parses) ----

class Parser {
 public:
  using Resolve = std::function<Value(const std::string&)>;
  Parser(std::string_view s, Resolve resolve) : s_(s), resolve_(std::move(resolve)) {}

  Args args() {
    Args out;
    if (peek() == '\0') return out;
    for (;;) {
      out.push_back(value());
      if (peek() == '\0') return out;
      expect(',');
    }
  }

 private:
  char peek() {
    while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
    return i_ < s_.size() ? s_[i_] : '\0';
  }
  void expect(char c) {
    if (peek() != c) fail(std::string("expected '") + c + "'");
    ++i_;
  }
  [[noreturn]] void fail(const std::string& what) const {
    throw ScriptError(what + " at " + std::to_string(i_) + " in '" + std::string(s_) + "'");
  }

  Value::Array values_until(char close) {
    Value::Array out;
    while (peek() != close) {
      if (peek() == '\0') fail("unterminated sequence");
      out.push_back(value());
      if (peek() == ',')
        ++i_;
      else if (peek() != close)
        fail(std::string("expected ',' or '") + close + "'");
    }
    ++i_;
    return out;
  }

  Value value() {
    char c = peek();
    if (c == '[') {
      ++i_;
      return values_until(']');
    }
    if (c == '(') {
      ++i_;
      return values_until(')');
    }
    if (c == '{') {
      ++i_;
      Value::Map m;
      while (peek() != '}') {
        if (peek() == '\0') fail("unterminated dict");
        Value k = value();
        expect(':');
        m.emplace_back(std::move(k), value());
        if (peek() == ',') ++i_;
      }
      ++i_;
      return m;
    }
    if (c == '\'') {
      ++i_;
      std::string out;
      while (i_ < s_.size() && s_[i_] != '\'') {
        if (s_[i_] == '\\') ++i_;
        if (i_ < s_.size()) out += s_[i_++];
      }
      expect('\'');
      return out;
    }
    std::size_t b = i_;
    if (c == '@' || std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      ++i_;
      while (i_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[i_])) || s_[i_] == '_'))
        ++i_;
      std::string word(s_.substr(b, i_ - b));
      if (word[0] == '@') return resolve_(word.substr(1));
      if (word == "None") return Value();
      if (word == "True") return true;
      if (word == "False") return false;
      fail("unknown word '" + word + "'");
    }
    if (c == '-') ++i_;
    bool is_float = false;
    auto digits = [&] {
      std::size_t start = i_;
      while (i_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[i_]))) ++i_;
      return i_ > start;
    };
    if (!digits()) fail("bad literal");
    if (i_ < s_.size() && s_[i_] == '.') {
      ++i_;
      digits();
      is_float = true;
    }
    if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
      ++i_;
      if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-')) ++i_;
      if (!digits()) fail("bad exponent");
      is_float = true;
    }
    std::string text(s_.substr(b, i_ - b));
    if (is_float) return std::stod(text);
    try {
      // Python's ints are unbounded; zmanager's reach to uint64 above int64.
      if (text[0] != '-' && std::stoull(text) > static_cast<std::uint64_t>(INT64_MAX))
        return static_cast<std::uint64_t>(std::stoull(text));
      return static_cast<std::int64_t>(std::stoll(text));
    } catch (const std::out_of_range&) {
      fail("integer beyond 64 bits");
    }
  }

  std::string_view s_;
  Resolve resolve_;
  std::size_t i_ = 0;
};

// ---- canonical rendering (python_runner.py's render()) ----

/// Python's repr(float): the shortest digits that round-trip, positional for exponents in
/// [-4, 16), scientific with a two-digit exponent otherwise.
std::string py_float(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string s(buf, res.ptr);
  std::string sign;
  if (s[0] == '-') {
    sign = "-";
    s.erase(0, 1);
  }
  auto epos = s.find('e');
  int exp = std::stoi(s.substr(epos + 1));
  std::string digits;
  for (char ch : s.substr(0, epos))
    if (ch != '.') digits += ch;
  std::string out;
  if (exp >= -4 && exp < 16) {
    if (exp < 0) {
      out = "0." + std::string(static_cast<std::size_t>(-exp - 1), '0') + digits;
    } else {
      auto point = static_cast<std::size_t>(exp) + 1;
      if (digits.size() <= point)
        out = digits + std::string(point - digits.size(), '0') + ".0";
      else
        out = digits.substr(0, point) + "." + digits.substr(point);
    }
  } else {
    out = digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    std::string e = std::to_string(std::abs(exp));
    if (e.size() < 2) e = "0" + e;
    out += std::string("e") + (exp < 0 ? "-" : "+") + e;
  }
  return sign + out;
}

std::string render(const Value& v) {
  return v.visit([&](const auto& x) -> std::string {
    using X = std::decay_t<decltype(x)>;
    if constexpr (std::is_same_v<X, std::monostate>) {
      return "None";
    } else if constexpr (std::is_same_v<X, bool>) {
      return x ? "True" : "False";
    } else if constexpr (std::is_same_v<X, std::int64_t> || std::is_same_v<X, std::uint64_t>) {
      return std::to_string(x);
    } else if constexpr (std::is_same_v<X, double>) {
      return py_float(x);
    } else if constexpr (std::is_same_v<X, std::string>) {
      std::string out = "'";
      for (char ch : x) {
        if (ch == '\\' || ch == '\'') out += '\\';
        out += ch;
      }
      return out + "'";
    } else if constexpr (std::is_same_v<X, Value::Array>) {
      std::string out = "[";
      for (std::size_t i = 0; i < x.size(); ++i) out += (i ? ", " : "") + render(x[i]);
      return out + "]";
    } else if constexpr (std::is_same_v<X, Value::Map>) {
      std::string out = "{";
      for (std::size_t i = 0; i < x.size(); ++i)
        out += (i ? ", " : "") + render(x[i].first) + ": " + render(x[i].second);
      return out + "}";
    } else if constexpr (std::is_same_v<X, Value::Ref>) {
      return x.ref ? "<proxy " + std::string(x.ref->type()) + ">" : "None";
    } else {
      return "<" + std::string(v.kind()) + ">";
    }
  });
}

std::string error_result(const std::string& name, const std::exception& e) {
  return "!" + name + (show_messages() ? std::string(": ") + e.what() : std::string());
}

// ---- results as Values ----

Value to_value(bool b) {
  return Value(b);
}
Value to_value(std::size_t n) {
  return Value(n);
}
Value to_value(std::int64_t n) {
  return Value(n);
}
Value to_value(double d) {
  return Value(d);
}
Value to_value(Value v) {
  return v;
}
// Declared first: each may hold the others.
template <class T>
Value to_value(const std::vector<T>& xs);
template <class A, class B>
Value to_value(const std::pair<A, B>& p);
template <class K, class V>
Value to_value(const std::map<K, V>& m);

template <class T>
Value to_value(const std::vector<T>& xs) {
  Value::Array out;
  for (const auto& x : xs) out.push_back(to_value(x));
  return out;
}
template <class A, class B>
Value to_value(const std::pair<A, B>& p) {
  return Value::Array{to_value(p.first), to_value(p.second)};
}
template <class K, class V>
Value to_value(const std::map<K, V>& m) {
  Value::Map out;
  for (const auto& [k, v] : m) out.emplace_back(to_value(k), to_value(v));
  return out;
}

// ---- arguments ----

void arity(const Args& a, std::size_t min, std::size_t max) {
  if (a.size() < min || a.size() > max)
    throw ScriptError("expected " + std::to_string(min) + ".." + std::to_string(max) +
                      " arguments, got " + std::to_string(a.size()));
}
bool opt_bool(const Args& a, std::size_t i, bool fallback) {
  return i < a.size() ? a[i].as<bool>() : fallback;
}
/// Python's timeout argument: absent or None waits forever.
zmanager::Timeout opt_timeout(const Args& a, std::size_t i) {
  if (i >= a.size() || a[i].is_none()) return {};
  return std::chrono::duration<double>(a[i].as<double>());
}
std::optional<std::int64_t> opt_index(const Value& v) {
  if (v.is_none()) return std::nullopt;
  return v.as<std::int64_t>();
}
/// A dict or a sequence of pairs, in its order.
std::vector<std::pair<Value, Value>> pairs_of(const Value& v) {
  if (v.holds<Value::Map>()) return v.get<Value::Map>();
  return v.as<std::vector<std::pair<Value, Value>>>();
}

// ---- objects ----

using Object = std::variant<
    zmanager::DictProxy<>, zmanager::ListProxy<>, zmanager::QueueProxy<>, zmanager::LockProxy,
    zmanager::RLockProxy, zmanager::SemaphoreProxy, zmanager::ConditionProxy, zmanager::EventProxy,
    zmanager::BarrierProxy, zmanager::ValueProxy<std::int64_t>, zmanager::ValueProxy<double>,
    zmanager::ValueProxy<bool>, zmanager::ArrayProxy<std::int64_t>, zmanager::ArrayProxy<double>,
    zmanager::ArrayProxy<bool>, zmanager::NamespaceProxy>;

template <class P>
struct IsValueProxy : std::false_type {};
template <class T>
struct IsValueProxy<zmanager::ValueProxy<T>> : std::true_type {};

[[noreturn]] void unknown(std::string_view type, std::string_view op) {
  throw ScriptError(std::string(type) + " has no operation '" + std::string(op) + "'");
}

Value dict_op(const zmanager::DictProxy<>& d, std::string_view op, const Args& a) {
  if (op == "setitem") return arity(a, 2, 2), d.set(a[0], a[1]), Value();
  if (op == "getitem") return arity(a, 1, 1), d.get(a[0]);
  if (op == "delitem") return arity(a, 1, 1), d.del(a[0]), Value();
  if (op == "contains") return arity(a, 1, 1), to_value(d.contains(a[0]));
  if (op == "len") return arity(a, 0, 0), to_value(d.size());
  // Python's get(k) answers None when k is absent; the C++ one-argument get() is getitem.
  if (op == "get") return arity(a, 1, 2), d.get(a[0], a.size() > 1 ? a[1] : Value());
  if (op == "pop") return arity(a, 1, 2), a.size() > 1 ? d.pop(a[0], a[1]) : d.pop(a[0]);
  if (op == "popitem") return arity(a, 0, 0), to_value(d.popitem());
  if (op == "setdefault") return arity(a, 2, 2), d.setdefault(a[0], a[1]);
  if (op == "update") {
    arity(a, 1, 1);
    return d.update(pairs_of(a[0])), Value();
  }
  if (op == "clear") return arity(a, 0, 0), d.clear(), Value();
  // The typed copy() is a std::map (sorted); the server's copy keeps Python's insertion order.
  if (op == "copy") return arity(a, 0, 0), d.dynamic().call<Value>("copy");
  if (op == "keys") return arity(a, 0, 0), to_value(d.keys());
  if (op == "values") return arity(a, 0, 0), to_value(d.values());
  if (op == "items") return arity(a, 0, 0), to_value(d.items());
  unknown("dict", op);
}

Value list_op(const zmanager::ListProxy<>& l, std::string_view op, const Args& a) {
  if (op == "getitem") return arity(a, 1, 1), l.get(a[0].as<std::int64_t>());
  if (op == "setitem") return arity(a, 2, 2), l.set(a[0].as<std::int64_t>(), a[1]), Value();
  if (op == "delitem") return arity(a, 1, 1), l.del(a[0].as<std::int64_t>()), Value();
  if (op == "slice") return arity(a, 2, 2), to_value(l.slice(opt_index(a[0]), opt_index(a[1])));
  if (op == "len") return arity(a, 0, 0), to_value(l.size());
  if (op == "append") return arity(a, 1, 1), l.append(a[0]), Value();
  if (op == "extend") return arity(a, 1, 1), l.extend(a[0].as<std::vector<Value>>()), Value();
  if (op == "insert") return arity(a, 2, 2), l.insert(a[0].as<std::int64_t>(), a[1]), Value();
  if (op == "pop") return arity(a, 0, 1), a.empty() ? l.pop() : l.pop(a[0].as<std::int64_t>());
  if (op == "remove") return arity(a, 1, 1), l.remove(a[0]), Value();
  if (op == "index") {
    arity(a, 1, 3);
    if (a.size() == 1) return to_value(l.index(a[0]));
    if (a.size() == 2) return to_value(l.index(a[0], a[1].as<std::int64_t>()));
    return to_value(l.index(a[0], a[1].as<std::int64_t>(), a[2].as<std::int64_t>()));
  }
  if (op == "count") return arity(a, 1, 1), to_value(l.count(a[0]));
  if (op == "contains") return arity(a, 1, 1), to_value(l.contains(a[0]));
  if (op == "reverse") return arity(a, 0, 0), l.reverse(), Value();
  if (op == "sort") return arity(a, 0, 1), l.sort(opt_bool(a, 0, false)), Value();
  if (op == "to_list") return arity(a, 0, 0), to_value(l.to_vector());
  if (op == "add") return arity(a, 1, 1), to_value(l + a[0].as<std::vector<Value>>());
  if (op == "imul") return arity(a, 1, 1), l *= a[0].as<std::int64_t>(), Value();
  unknown("list", op);
}

Value queue_op(const zmanager::QueueProxy<>& q, std::string_view op, const Args& a) {
  if (op == "put")
    return arity(a, 1, 3), q.put(a[0], opt_bool(a, 1, true), opt_timeout(a, 2)), Value();
  if (op == "put_nowait") return arity(a, 1, 1), q.put_nowait(a[0]), Value();
  if (op == "get") return arity(a, 0, 2), q.get(opt_bool(a, 0, true), opt_timeout(a, 1));
  if (op == "get_nowait") return arity(a, 0, 0), q.get_nowait();
  if (op == "qsize") return arity(a, 0, 0), to_value(q.qsize());
  if (op == "empty") return arity(a, 0, 0), to_value(q.empty());
  if (op == "full") return arity(a, 0, 0), to_value(q.full());
  if (op == "task_done") return arity(a, 0, 0), q.task_done(), Value();
  if (op == "join") {
    // join() takes no timeout (in Python neither); bounded here so that a hang shows as such.
    arity(a, 0, 0);
    auto f = q.join_async();
    if (!f.wait_for(kJoinTimeout)) return Value("runner: join did not return");
    f.get();
    return Value();
  }
  unknown("queue", op);
}

template <class L>
Value acquirer_op(const L& l, std::string_view op, const Args& a) {
  if (op == "acquire")
    return arity(a, 0, 2), to_value(l.acquire(opt_bool(a, 0, true), opt_timeout(a, 1)));
  if (op == "release") return arity(a, 0, 0), l.release(), Value();
  unknown("lock", op);
}

Value condition_op(const zmanager::ConditionProxy& c, std::string_view op, const Args& a) {
  if (op == "acquire" || op == "release") return acquirer_op(c, op, a);
  if (op == "wait") return arity(a, 0, 1), to_value(c.wait(opt_timeout(a, 0)));
  if (op == "notify")
    return arity(a, 0, 1), c.notify(a.empty() ? 1 : a[0].as<std::int64_t>()), Value();
  if (op == "notify_all") return arity(a, 0, 0), c.notify_all(), Value();
  unknown("Condition", op);
}

Value event_op(const zmanager::EventProxy& e, std::string_view op, const Args& a) {
  if (op == "set") return arity(a, 0, 0), e.set(), Value();
  if (op == "clear") return arity(a, 0, 0), e.clear(), Value();
  if (op == "is_set") return arity(a, 0, 0), to_value(e.is_set());
  if (op == "wait") return arity(a, 0, 1), to_value(e.wait(opt_timeout(a, 0)));
  unknown("Event", op);
}

Value barrier_op(const zmanager::BarrierProxy& b, std::string_view op, const Args& a) {
  if (op == "wait") return arity(a, 0, 1), to_value(b.wait(opt_timeout(a, 0)));
  if (op == "abort") return arity(a, 0, 0), b.abort(), Value();
  if (op == "reset") return arity(a, 0, 0), b.reset(), Value();
  if (op == "parties") return arity(a, 0, 0), to_value(b.parties());
  if (op == "n_waiting") return arity(a, 0, 0), to_value(b.n_waiting());
  if (op == "broken") return arity(a, 0, 0), to_value(b.broken());
  unknown("Barrier", op);
}

template <class T>
Value value_op(const zmanager::ValueProxy<T>& v, std::string_view op, const Args& a) {
  if (op == "get") return arity(a, 0, 0), to_value(v.get());
  if (op == "set") return arity(a, 1, 1), v.set(a[0].as<T>()), Value();
  unknown("Value", op);
}

template <class T>
Value array_op(const zmanager::ArrayProxy<T>& arr, std::string_view op, const Args& a) {
  if (op == "len") return arity(a, 0, 0), to_value(arr.size());
  if (op == "getitem") return arity(a, 1, 1), to_value(arr.get(a[0].as<std::int64_t>()));
  if (op == "setitem")
    return arity(a, 2, 2), arr.set(a[0].as<std::int64_t>(), a[1].as<T>()), Value();
  if (op == "slice") return arity(a, 2, 2), to_value(arr.slice(opt_index(a[0]), opt_index(a[1])));
  if (op == "to_list") return arity(a, 0, 0), to_value(arr.to_vector());
  unknown("Array", op);
}

Value namespace_op(const zmanager::NamespaceProxy& ns, std::string_view op, const Args& a) {
  if (op == "set") return arity(a, 2, 2), ns.set(a[0].as<std::string>(), a[1]), Value();
  if (op == "get") return arity(a, 1, 1), ns.get(a[0].as<std::string>());
  if (op == "del") return arity(a, 1, 1), ns.del(a[0].as<std::string>()), Value();
  if (op == "contains") return arity(a, 1, 1), to_value(ns.contains(a[0].as<std::string>()));
  unknown("Namespace", op);
}

Value call(const Object& o, std::string_view op, const Args& a) {
  return std::visit(
      [&](const auto& p) -> Value {
        using P = std::decay_t<decltype(p)>;
        if constexpr (std::is_same_v<P, zmanager::DictProxy<>>)
          return dict_op(p, op, a);
        else if constexpr (std::is_same_v<P, zmanager::ListProxy<>>)
          return list_op(p, op, a);
        else if constexpr (std::is_same_v<P, zmanager::QueueProxy<>>)
          return queue_op(p, op, a);
        else if constexpr (std::is_same_v<P, zmanager::LockProxy> ||
                           std::is_same_v<P, zmanager::RLockProxy> ||
                           std::is_same_v<P, zmanager::SemaphoreProxy>)
          return acquirer_op(p, op, a);
        else if constexpr (std::is_same_v<P, zmanager::ConditionProxy>)
          return condition_op(p, op, a);
        else if constexpr (std::is_same_v<P, zmanager::EventProxy>)
          return event_op(p, op, a);
        else if constexpr (std::is_same_v<P, zmanager::BarrierProxy>)
          return barrier_op(p, op, a);
        else if constexpr (std::is_same_v<P, zmanager::NamespaceProxy>)
          return namespace_op(p, op, a);
        else if constexpr (IsValueProxy<P>::value)
          return value_op(p, op, a);
        else
          return array_op(p, op, a);
      },
      o);
}

std::string element_kind(const std::string& typecode) {
  if (typecode.size() == 1 && std::string_view("bhilq").find(typecode[0]) != std::string::npos)
    return "int";
  if (typecode == "d" || typecode == "f") return "float";
  if (typecode == "?") return "bool";
  throw ScriptError("typecode '" + typecode + "' is not handled by the runner");
}

Object create(zmanager::SyncManager& m, const std::string& type, const Args& a) {
  if (type == "dict") {
    arity(a, 0, 1);
    std::vector<std::pair<Value, Value>> initial;
    if (!a.empty())
      for (const auto& [k, v] : pairs_of(a[0])) initial.emplace_back(k, v);
    return m.dict(initial);
  }
  if (type == "list") return arity(a, 0, 1), m.list(a.empty() ? Args{} : a[0].as<Args>());
  auto maxsize = [&] { return arity(a, 0, 1), a.empty() ? 0 : a[0].as<std::int64_t>(); };
  if (type == "Queue") return m.Queue(maxsize());
  if (type == "LifoQueue") return m.LifoQueue(maxsize());
  if (type == "PriorityQueue") return m.PriorityQueue(maxsize());
  if (type == "JoinableQueue") return m.JoinableQueue(maxsize());
  if (type == "Lock") return arity(a, 0, 0), m.Lock();
  if (type == "RLock") return arity(a, 0, 0), m.RLock();
  auto initial = [&] { return arity(a, 0, 1), a.empty() ? 1 : a[0].as<std::int64_t>(); };
  if (type == "Semaphore") return m.Semaphore(initial());
  if (type == "BoundedSemaphore") return m.BoundedSemaphore(initial());
  if (type == "Condition") {
    arity(a, 0, 1);
    if (a.empty() || a[0].is_none()) return m.Condition();
    auto lock = a[0].as<zmanager::DynamicProxy>();
    if (lock.type_id() == "RLock") return m.Condition(zmanager::RLockProxy(lock));
    return m.Condition(zmanager::LockProxy(lock));
  }
  if (type == "Event") return arity(a, 0, 0), m.Event();
  if (type == "Barrier") {
    arity(a, 1, 3);
    std::optional<std::string> action;
    if (a.size() > 1 && !a[1].is_none()) action = a[1].as<std::string>();
    return m.Barrier(a[0].as<std::int64_t>(), action, opt_timeout(a, 2));
  }
  if (type == "Value" || type == "Array") {
    arity(a, 2, 2);
    auto kind = element_kind(a[0].as<std::string>());
    if (type == "Value") {
      if (kind == "int") return m.Value(a[1].as<std::int64_t>());
      if (kind == "float") return m.Value(a[1].as<double>());
      return m.Value(a[1].as<bool>());
    }
    if (kind == "int") return m.Array(a[1].as<std::vector<std::int64_t>>());
    if (kind == "float") return m.Array(a[1].as<std::vector<double>>());
    return m.Array(a[1].as<std::vector<bool>>());
  }
  if (type == "Namespace") return arity(a, 0, 0), m.Namespace();
  throw ScriptError("unknown type '" + type + "'");
}

/// The rendered outcome of `body()`: its result, or the error it raised by its Python name.
template <class F>
std::string outcome(F body) {
  try {
    return body();
  } catch (const ScriptError&) {
    throw;
  } catch (const zmanager::RemoteError& e) {
    return error_result(e.type(), e);
  } catch (const std::exception& e) {
    return error_result(zmanager::error_type_name(e), e);
  }
}

// ---- the script ----

struct ScriptThread {
  std::vector<std::string> body;
  std::thread thread;
  std::vector<std::string> log;  // set by the thread, under the runner's mutex, as it finishes
  bool started = false;
  bool finished = false;
};

class Runner {
 public:
  explicit Runner(zmanager::SyncManager& m) : m_(m) {}

  void run(const std::vector<std::string>& lines) {
    for (std::size_t i = 0; i < lines.size();) {
      const std::string& line = lines[i++];
      auto w = words(line);
      const std::string& kw = w[0];
      if (kw == "thread") {
        if (w.size() != 2) throw ScriptError("thread needs a name: " + line);
        auto& t = threads_[w[1]];
        for (; i < lines.size() && lines[i] != "end"; ++i) {
          static const std::set<std::string> statements{"new",    "thread", "start", "join",
                                                        "gather", "done",   "until"};
          if (statements.count(words(lines[i])[0]))
            throw ScriptError("not allowed in a thread: " + lines[i]);
          t.body.push_back(lines[i]);
        }
        if (i == lines.size()) throw ScriptError("thread " + w[1] + " has no end");
        ++i;
      } else if (kw == "new") {
        out(line + " -> " + create_line(line));
      } else if (kw == "start") {
        start(w.at(1));
        out(line);
      } else if (kw == "join") {
        auto log = join(w.at(1));
        out(line + (log ? "" : " -> timeout"));
        for (const auto& entry : log.value_or(std::vector<std::string>{}))
          out("  " + w[1] + "| " + entry);
      } else if (kw == "gather") {
        // Symmetric threads (barrier parties) end in any order: compare their results as a
        // sorted multiset.
        std::vector<std::string> entries;
        std::string late;
        for (std::size_t k = 1; k < w.size(); ++k) {
          auto log = join(w[k]);
          if (!log) late += " " + w[k];
          for (auto& e : log.value_or(std::vector<std::string>{})) entries.push_back(e);
        }
        std::sort(entries.begin(), entries.end());
        out(line + (late.empty() ? "" : " -> timeout" + late));
        for (const auto& e : entries) out("  *| " + e);
      } else if (kw == "done") {
        out(line + " -> " + std::to_string(done(std::stoul(w.at(1)), {w.begin() + 2, w.end()})));
      } else if (kw == "until") {
        out(line + " -> " + until(line));
      } else {
        out(line + " -> " + op(line));
      }
    }
  }

  /// Threads that have not finished (each stuck on a call the script expected to return).
  std::vector<std::string> stuck() {
    std::lock_guard lock(mu_);
    std::vector<std::string> out;
    for (auto& [name, t] : threads_)
      if (t.started && !t.finished) out.push_back(name);
    return out;
  }

  void join_all() {
    for (auto& [name, t] : threads_)
      if (t.thread.joinable()) t.thread.join();
  }

 private:
  static void out(const std::string& s) { std::cout << s << std::endl; }

  Value resolve(const std::string& name) {
    std::lock_guard lock(mu_);
    auto it = objects_.find(name);
    if (it == objects_.end()) throw ScriptError("no object '" + name + "'");
    return std::visit([](const auto& p) { return Value(p); }, it->second);
  }

  Args parse(const std::string& text) {
    return Parser(text, [this](const std::string& n) { return resolve(n); }).args();
  }

  /// `NAME OP ARGS`: the rendered result, or !Error.
  std::string op(const std::string& line) {
    auto parts = split_head(line, 2);
    if (parts.size() < 2) throw ScriptError("bad line: " + line);
    const Object* object;
    {
      std::lock_guard lock(mu_);
      auto it = objects_.find(parts[0]);
      if (it == objects_.end()) throw ScriptError("no object '" + parts[0] + "'");
      object = &it->second;  // objects are only added, by the main thread, never erased
    }
    Args args = parse(parts.size() > 2 ? parts[2] : "");
    return outcome([&] { return render(call(*object, parts[1], args)); });
  }

  std::string create_line(const std::string& line) {
    auto parts = split_head(line, 3);
    if (parts.size() < 3) throw ScriptError("bad line: " + line);
    Args args = parse(parts.size() > 3 ? parts[3] : "");
    return outcome([&] {
      Object o = create(m_, parts[2], args);
      std::lock_guard lock(mu_);
      // Never replaced: threads hold pointers to the objects.
      if (!objects_.emplace(parts[1], std::move(o)).second)
        throw ScriptError("object '" + parts[1] + "' exists already");
      return std::string("ok");
    });
  }

  void start(const std::string& name) {
    auto it = threads_.find(name);
    if (it == threads_.end() || it->second.started)
      throw ScriptError("cannot start thread '" + name + "'");
    ScriptThread& t = it->second;
    t.started = true;
    t.thread = std::thread([this, &t] {
      std::vector<std::string> log;
      try {
        for (const auto& line : t.body) log.push_back(line + " -> " + op(line));
      } catch (const std::exception& e) {
        log.push_back(std::string("script error: ") + e.what());
      }
      std::lock_guard lock(mu_);
      t.log = std::move(log);
      t.finished = true;
      cv_.notify_all();
    });
  }

  /// The thread's log, or nothing if it did not finish in time.
  std::optional<std::vector<std::string>> join(const std::string& name) {
    auto it = threads_.find(name);
    if (it == threads_.end() || !it->second.started)
      throw ScriptError("cannot join thread '" + name + "'");
    ScriptThread& t = it->second;
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, kJoinTimeout, [&] { return t.finished; })) return std::nullopt;
    lock.unlock();
    t.thread.join();
    return t.log;
  }

  std::size_t done(std::size_t want, const std::vector<std::string>& names) {
    auto count = [&] {
      std::size_t n = 0;
      for (const auto& name : names) {
        auto it = threads_.find(name);
        if (it == threads_.end()) throw ScriptError("no thread '" + name + "'");
        n += it->second.finished;
      }
      return n;
    };
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, kDoneTimeout, [&] { return count() >= want; });
    // A thread woken by mistake would finish right after the expected ones: give it a moment
    // to show up before counting.
    cv_.wait_for(lock, kDoneGrace, [&] { return count() > want; });
    return count();
  }

  /// `until V : op ; ? op ; op`: repeats the ops until the `?` one gives V. What is polled is
  /// remote state nobody signals, hence the short sleeps.
  std::string until(const std::string& line) {
    auto colon = line.find(':');
    if (colon == std::string::npos) throw ScriptError("until needs ':': " + line);
    auto head = parse(line.substr(5, colon - 5));
    if (head.size() != 1) throw ScriptError("until needs one value: " + line);
    std::string expected = render(head[0]);
    std::vector<std::string> steps;
    std::istringstream body(line.substr(colon + 1));
    for (std::string s; std::getline(body, s, ';');) steps.push_back(trim(s));
    if (std::count_if(steps.begin(), steps.end(), [](auto& s) { return s.starts_with("?"); }) != 1)
      throw ScriptError("until needs exactly one '?' step: " + line);
    auto deadline = std::chrono::steady_clock::now() + kUntilTimeout;
    std::string last = "None";
    while (std::chrono::steady_clock::now() < deadline) {
      for (const auto& s : steps) {
        bool probe = s.starts_with("?");
        auto r = op(probe ? trim(std::string_view(s).substr(1)) : s);
        if (probe) last = r;
      }
      if (last == expected) return "ok";
      std::this_thread::sleep_for(kUntilPoll);
    }
    return "timeout (last " + last + ")";
  }

  zmanager::SyncManager& m_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, Object> objects_;
  std::map<std::string, ScriptThread> threads_;
};

std::vector<std::string> read_script(const char* path) {
  std::ifstream in(path);
  if (!in) throw ScriptError(std::string("cannot read ") + path);
  std::vector<std::string> lines;
  for (std::string raw; std::getline(in, raw);) {
    auto s = trim(raw);
    if (!s.empty() && s[0] != '#') lines.push_back(s);
  }
  return lines;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: zmanager_runner SCENARIOS\n";
    return 2;
  }
  try {
    auto lines = read_script(argv[1]);
    zmanager::SyncManager m;
    m.start();  // forks: before any thread exists
    Runner runner(m);
    runner.run(lines);
    auto stuck = runner.stuck();
    if (!stuck.empty()) {
      std::string names;
      for (const auto& n : stuck) names += " " + n;
      std::cout << "threads still running at the end:" << names << std::endl;
      // They wait on calls that never return; the server stops once this process is gone.
      std::_Exit(1);
    }
    runner.join_all();
    m.shutdown();
  } catch (const ScriptError& e) {
    std::cout.flush();
    std::cerr << "script error: " << e.what() << std::endl;
    std::_Exit(2);
  }
  return 0;
}
