// dict, list, Value, Array and Namespace as Python behaves, on zmanager::Value.
#include <algorithm>
#include <limits>

#include "objects.hpp"

namespace zmanager::sync {

namespace {

bool is_number(const Value& v) {
  return v.holds<bool>() || v.holds<std::int64_t>() || v.holds<std::uint64_t>() ||
         v.holds<double>();
}

/// Python refuses to hash a dict. An array is a key as Python's tuple is (the wire has one
/// sequence type, and a key is a copy on the server, so it cannot change under the dict).
void check_hashable(const Value& key) {
  if (key.holds<Value::Map>()) throw TypeError("unhashable type: 'dict'");
  if (key.holds<Value::Array>())
    for (const auto& e : key.get<Value::Array>()) check_hashable(e);
}

/// Python's slice bounds: negatives count from the end, then both are clamped to [0, size].
std::pair<std::size_t, std::size_t> slice_bounds(std::optional<Int> start, std::optional<Int> stop,
                                                 std::size_t size) {
  auto n = static_cast<Int>(size);
  auto clamp = [n](Int i) { return std::clamp<Int>(i < 0 ? i + n : i, 0, n); };
  Int b = start ? clamp(*start) : 0;
  Int e = stop ? clamp(*stop) : n;
  if (e < b) e = b;
  return {static_cast<std::size_t>(b), static_cast<std::size_t>(e)};
}

const Value::Array& as_sequence(const Value& v, const char* what) {
  if (!v.holds<Value::Array>())
    throw TypeError(std::string(what) + ": expected list, got " + std::string(v.kind()));
  return v.get<Value::Array>();
}

/// The element kind a Python typecode stores: 'i'-like codes hold ints, 'f'/'d' floats, '?'
/// bools. Anything else is Python's ValueError.
enum class Kind { kInt, kFloat, kBool };
Kind kind_of_typecode(const std::string& code) {
  static const std::string ints = "bBhHiIlLqQ";
  if (code.size() == 1 && ints.find(code[0]) != std::string::npos) return Kind::kInt;
  if (code == "f" || code == "d") return Kind::kFloat;
  if (code == "?") return Kind::kBool;
  throw ValueError("bad typecode (must be one of b, B, h, H, i, I, l, L, q, Q, f, d, ?): '" + code +
                   "'");
}

/// A value stored under `code`: ints stay ints, floats take ints too (as ctypes does).
Value coerce(Kind kind, const Value& v) {
  switch (kind) {
    case Kind::kInt:
      if (v.holds<std::int64_t>() || v.holds<std::uint64_t>()) return v;
      break;
    case Kind::kFloat:
      if (v.holds<double>()) return v;
      if (v.holds<std::int64_t>()) return static_cast<double>(v.get<std::int64_t>());
      if (v.holds<std::uint64_t>()) return static_cast<double>(v.get<std::uint64_t>());
      break;
    case Kind::kBool:
      if (v.holds<bool>()) return v;
      break;
  }
  static const char* names[] = {"int", "float", "bool"};
  throw TypeError("expected " + std::string(names[static_cast<int>(kind)]) + ", got " +
                  std::string(v.kind()));
}

}  // namespace

void check_comparable(const Value& a, const Value& b) {
  if (a.kind() == b.kind() || (is_number(a) && is_number(b))) return;
  throw TypeError("'<' not supported between instances of '" + std::string(a.kind()) + "' and '" +
                  std::string(b.kind()) + "'");
}

// ---- dict ----

DictObject::DictObject(const Value& initial) {
  if (!initial.is_none()) update(initial);
}

std::size_t DictObject::hash_of(const Value& key) {
  check_hashable(key);
  return key.hash();
}

std::size_t DictObject::probe(const Value& key, std::size_t hash, bool& found) const {
  found = false;
  std::size_t mask = slots_.size() - 1;
  std::size_t first_dummy = SIZE_MAX;
  // Linear probing: the table is at most two-thirds full, so a probe path ends soon.
  for (std::size_t i = hash & mask;; i = (i + 1) & mask) {
    std::uint32_t s = slots_[i];
    if (s == kEmpty) return first_dummy != SIZE_MAX ? first_dummy : i;
    if (s == kDummy) {
      if (first_dummy == SIZE_MAX) first_dummy = i;
      continue;
    }
    if (entries_[s - 1].key == key) {
      found = true;
      return i;
    }
  }
}

const DictObject::Entry* DictObject::find(const Value& key) const {
  std::size_t hash = hash_of(key);
  if (live_ == 0) return nullptr;
  bool found;
  std::size_t slot = probe(key, hash, found);
  return found ? &entries_[slots_[slot] - 1] : nullptr;
}

void DictObject::rebuild(std::size_t capacity) {
  std::size_t kept = 0;
  for (std::size_t n = 0; n < entries_.size(); ++n)
    if (!removed_[n]) {
      if (kept != n) entries_[kept] = std::move(entries_[n]);
      ++kept;
    }
  entries_.resize(kept);
  removed_.assign(kept, false);
  slots_.assign(capacity, kEmpty);
  std::size_t mask = capacity - 1;
  for (std::size_t n = 0; n < entries_.size(); ++n) {
    std::size_t i = entries_[n].key.hash() & mask;
    while (slots_[i] != kEmpty) i = (i + 1) & mask;
    slots_[i] = static_cast<std::uint32_t>(n + 1);
  }
  used_slots_ = live_ = entries_.size();
}

void DictObject::reserve_one() {
  if ((used_slots_ + 1) * 3 <= slots_.size() * 2) return;
  std::size_t capacity = 8;
  while ((live_ + 1) * 3 > capacity * 2) capacity *= 2;
  if (capacity > (std::size_t{1} << 31)) throw ValueError("dict too large");
  rebuild(capacity);
}

Value DictObject::remove_at(std::size_t slot) {
  Entry& e = entries_[slots_[slot] - 1];
  Value v = std::move(e.value);
  e.key = Value();  // releases what the key and value held (proxies: their objects)
  e.value = Value();
  removed_[slots_[slot] - 1] = true;
  slots_[slot] = kDummy;
  --live_;
  // Trailing deleted entries go at once, so that popitem() finds the last live entry directly.
  while (!entries_.empty() && removed_.back()) {
    entries_.pop_back();
    removed_.pop_back();
  }
  return v;
}

Value DictObject::getitem(const Value& key) const {
  const Entry* e = find(key);
  if (!e) throw KeyError(key.repr());
  return e->value;
}

void DictObject::setitem(Value key, Value value) {
  std::size_t hash = hash_of(key);
  if (live_ > 0) {
    bool found;
    std::size_t slot = probe(key, hash, found);
    if (found) {
      entries_[slots_[slot] - 1].value = std::move(value);
      return;
    }
  }
  reserve_one();
  bool found;
  std::size_t slot = probe(key, hash, found);
  if (slots_[slot] == kEmpty) ++used_slots_;
  entries_.push_back(Entry{std::move(key), std::move(value)});
  removed_.push_back(false);
  slots_[slot] = static_cast<std::uint32_t>(entries_.size());
  ++live_;
}

void DictObject::delitem(const Value& key) {
  pop(key);
}

Value DictObject::get(const Value& key, Value fallback) const {
  const Entry* e = find(key);
  return e ? e->value : fallback;
}

bool DictObject::contains(const Value& key) const {
  return find(key) != nullptr;
}

Int DictObject::len() const {
  return static_cast<Int>(live_);
}

Value::Array DictObject::keys() const {
  return collect<Value::Array>([](const Entry& e) { return e.key; });
}

Value::Array DictObject::values() const {
  return collect<Value::Array>([](const Entry& e) { return e.value; });
}

Value::Array DictObject::items() const {
  return collect<Value::Array>([](const Entry& e) { return Value(Value::Array{e.key, e.value}); });
}

Value DictObject::pop(const Value& key) {
  std::size_t hash = hash_of(key);
  bool found = false;
  std::size_t slot = live_ > 0 ? probe(key, hash, found) : 0;
  if (!found) throw KeyError(key.repr());
  return remove_at(slot);
}

Value DictObject::pop_or(const Value& key, Value fallback) {
  return contains(key) ? pop(key) : fallback;
}

Value::Array DictObject::popitem() {
  if (live_ == 0) throw KeyError("'popitem(): dictionary is empty'");
  const Entry& last = entries_.back();  // LIFO, as Python's dict; never a deleted one
  Value key = last.key;
  bool found;
  std::size_t slot = probe(key, hash_of(key), found);
  Value value = remove_at(slot);
  return Value::Array{std::move(key), std::move(value)};
}

Value DictObject::setdefault(Value key, Value fallback) {
  if (const Entry* e = find(key)) return e->value;
  setitem(std::move(key), fallback);
  return fallback;
}

void DictObject::update(const Value& pairs) {
  if (pairs.holds<Value::Map>()) {
    for (const auto& [k, v] : pairs.get<Value::Map>()) setitem(k, v);
    return;
  }
  if (!pairs.holds<Value::Array>())
    throw TypeError("update(): expected a dict or a list of pairs, got " +
                    std::string(pairs.kind()));
  // Checked whole before any change, so that a bad element leaves the dict as it was.
  const auto& seq = pairs.get<Value::Array>();
  for (std::size_t i = 0; i < seq.size(); ++i) {
    const auto& e = seq[i];
    if (!e.holds<Value::Array>() || e.get<Value::Array>().size() != 2)
      throw ValueError("dictionary update sequence element #" + std::to_string(i) +
                       " is not a pair");
    check_hashable(e.get<Value::Array>()[0]);
  }
  for (const auto& e : seq) setitem(e.get<Value::Array>()[0], e.get<Value::Array>()[1]);
}

void DictObject::clear() {
  entries_.clear();
  removed_.clear();
  slots_.clear();
  live_ = used_slots_ = 0;
}

Value DictObject::copy() const {
  return collect<Value::Map>([](const Entry& e) { return std::pair(e.key, e.value); });
}

// ---- list ----

ListObject::ListObject(const Value& initial) {
  if (!initial.is_none()) items_ = as_sequence(initial, "list()");
}

std::size_t ListObject::at(Int index, const char* what) const {
  auto n = static_cast<Int>(items_.size());
  Int i = index < 0 ? index + n : index;
  if (i < 0 || i >= n) throw IndexError(what);
  return static_cast<std::size_t>(i);
}

Value ListObject::getitem(Int index) const {
  return items_[at(index, "list index out of range")];
}

void ListObject::setitem(Int index, Value value) {
  items_[at(index, "list assignment index out of range")] = std::move(value);
}

void ListObject::delitem(Int index) {
  items_.erase(items_.begin() +
               static_cast<std::ptrdiff_t>(at(index, "list assignment index out of range")));
}

Value::Array ListObject::getslice(std::optional<Int> start, std::optional<Int> stop) const {
  auto [b, e] = slice_bounds(start, stop, items_.size());
  return Value::Array(items_.begin() + static_cast<std::ptrdiff_t>(b),
                      items_.begin() + static_cast<std::ptrdiff_t>(e));
}

Int ListObject::len() const {
  return static_cast<Int>(items_.size());
}

void ListObject::append(Value value) {
  items_.push_back(std::move(value));
}

void ListObject::extend(const Value& values) {
  const auto& seq = as_sequence(values, "extend()");
  items_.insert(items_.end(), seq.begin(), seq.end());
}

void ListObject::insert(Int index, Value value) {
  auto [pos, unused] = slice_bounds(index, std::nullopt, items_.size());
  items_.insert(items_.begin() + static_cast<std::ptrdiff_t>(pos), std::move(value));
}

Value ListObject::pop(Int index) {
  if (items_.empty()) throw IndexError("pop from empty list");
  auto i = at(index, "pop index out of range");
  Value v = std::move(items_[i]);
  items_.erase(items_.begin() + static_cast<std::ptrdiff_t>(i));
  return v;
}

void ListObject::remove(const Value& value) {
  auto it = std::find(items_.begin(), items_.end(), value);
  if (it == items_.end()) throw ValueError("list.remove(x): x not in list");
  items_.erase(it);
}

Int ListObject::index(const Value& value, Int start, Int stop) const {
  auto [b, e] = slice_bounds(start, stop, items_.size());
  for (auto i = b; i < e; ++i)
    if (items_[i] == value) return static_cast<Int>(i);
  throw ValueError(value.repr() + " is not in list");
}

Int ListObject::count(const Value& value) const {
  return static_cast<Int>(std::count(items_.begin(), items_.end(), value));
}

bool ListObject::contains(const Value& value) const {
  return std::find(items_.begin(), items_.end(), value) != items_.end();
}

void ListObject::reverse() {
  std::reverse(items_.begin(), items_.end());
}

void ListObject::sort(bool descending) {
  for (std::size_t i = 1; i < items_.size(); ++i) check_comparable(items_[0], items_[i]);
  if (descending)
    std::stable_sort(items_.begin(), items_.end(), std::greater<>());
  else
    std::stable_sort(items_.begin(), items_.end());
}

void ListObject::imul(Int times) {
  items_ = mul(times);
}

Value::Array ListObject::add(const Value& other) const {
  const auto& seq = as_sequence(other, "+");
  Value::Array out = items_;
  out.insert(out.end(), seq.begin(), seq.end());
  return out;
}

Value::Array ListObject::mul(Int times) const {
  Value::Array out;
  if (times <= 0 || items_.empty()) return out;
  constexpr std::size_t kMaxItems = std::size_t{1} << 26;  // a bound, not Python's MemoryError
  if (static_cast<std::uint64_t>(times) > kMaxItems / items_.size())
    throw ValueError("list repetition too large (" + std::to_string(times) + " times)");
  out.reserve(items_.size() * static_cast<std::size_t>(times));
  for (Int t = 0; t < times; ++t) out.insert(out.end(), items_.begin(), items_.end());
  return out;
}

Value::Array ListObject::to_list() const {
  return items_;
}

// ---- Value ----

ValueObject::ValueObject(const std::string& typecode, Value initial)
    : typecode_(typecode), value_(coerce(kind_of_typecode(typecode), initial)) {}

void ValueObject::set(Value v) {
  value_ = coerce(kind_of_typecode(typecode_), v);
}

Value ValueObject::fetch_add(const Value& delta) {
  return add(delta, +1);
}

// A separate method, not fetch_add(-delta): an unsigned delta has no negative on the client.
Value ValueObject::fetch_sub(const Value& delta) {
  return add(delta, -1);
}

Value ValueObject::add(const Value& delta, int sign) {
  Kind kind = kind_of_typecode(typecode_);
  if (kind == Kind::kBool) throw TypeError("arithmetic on a bool Value");
  Value old = value_;
  if (kind == Kind::kFloat) {
    value_ = old.as<double>() + sign * coerce(Kind::kFloat, delta).get<double>();
    return old;
  }
  coerce(Kind::kInt, delta);
  auto wide = [](const Value& v) -> __int128 {
    return v.holds<std::int64_t>() ? __int128{v.get<std::int64_t>()}
                                   : __int128{v.get<std::uint64_t>()};
  };
  __int128 sum = wide(old) + sign * wide(delta);
  if (sum < std::numeric_limits<std::int64_t>::min() ||
      sum > static_cast<__int128>(std::numeric_limits<std::uint64_t>::max()))
    throw ValueError("the result overflows a 64-bit integer");
  value_ = sum < 0 ? Value(static_cast<std::int64_t>(sum)) : Value(static_cast<std::uint64_t>(sum));
  return old;
}

Value ValueObject::exchange(Value v) {
  Value old = value_;
  set(std::move(v));
  return old;
}

Value::Array ValueObject::compare_exchange(const Value& expected, Value desired) {
  if (value_ != expected) return {false, value_};
  set(std::move(desired));
  return {true, value_};
}

// ---- Array ----

ArrayObject::ArrayObject(const std::string& typecode, const Value& items) : typecode_(typecode) {
  Kind kind = kind_of_typecode(typecode);
  for (const auto& v : as_sequence(items, "Array()")) items_.push_back(coerce(kind, v));
}

Value ArrayObject::getitem(Int index) const {
  auto n = static_cast<Int>(items_.size());
  Int i = index < 0 ? index + n : index;
  if (i < 0 || i >= n) throw IndexError("invalid index");
  return items_[static_cast<std::size_t>(i)];
}

void ArrayObject::setitem(Int index, Value value) {
  auto n = static_cast<Int>(items_.size());
  Int i = index < 0 ? index + n : index;
  if (i < 0 || i >= n) throw IndexError("invalid index");
  items_[static_cast<std::size_t>(i)] = coerce(kind_of_typecode(typecode_), value);
}

Value::Array ArrayObject::getslice(std::optional<Int> start, std::optional<Int> stop) const {
  auto [b, e] = slice_bounds(start, stop, items_.size());
  return Value::Array(items_.begin() + static_cast<std::ptrdiff_t>(b),
                      items_.begin() + static_cast<std::ptrdiff_t>(e));
}

Int ArrayObject::len() const {
  return static_cast<Int>(items_.size());
}

Value::Array ArrayObject::to_list() const {
  return items_;
}

// ---- Namespace ----

Value NamespaceObject::get(const std::string& name) const {
  auto it = attributes_.find(name);
  if (it == attributes_.end())
    throw AttributeError("'Namespace' object has no attribute '" + name + "'");
  return it->second;
}

void NamespaceObject::set(const std::string& name, Value value) {
  attributes_[name] = std::move(value);
}

void NamespaceObject::del(const std::string& name) {
  if (attributes_.erase(name) == 0) throw AttributeError(name);
}

bool NamespaceObject::contains(const std::string& name) const {
  return attributes_.count(name) != 0;
}

Value NamespaceObject::items() const {
  return Value::Map(attributes_.begin(), attributes_.end());
}

}  // namespace zmanager::sync
