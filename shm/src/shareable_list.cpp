#include "zmanager/shareable_list.hpp"

#include <cstring>
#include <string_view>

#include "zmanager/errors.hpp"

namespace zmanager {

// Python's layout (native byte order, every field a multiple of 8 bytes but the last):
//   0                 int64 N
//   8                 (N + 1) int64 slot offsets from the data start D; offsets[0] = 0
//   D = 8 (N + 2)     the slots
//   F = D + offsets[N]  N formats, 8 ASCII bytes each, NUL-padded ("q", "d", "16s", ...)
//   F + 8 N           N int8 codes: 0 as stored (int, float, bool), 1 str, 2 bytes, 3 None
// Python computes it with struct (native alignment adds nothing since all fields align).
namespace {

constexpr std::size_t kWord = 8;
constexpr const char* kBoolFormat = "xxxxxxx?";
constexpr const char* kNoneFormat = "xxxxxx?x";
enum Code : std::int8_t { kAsStored = 0, kStr = 1, kBytes = 2, kNone = 3 };

std::int64_t load_i64(const std::byte* p) {
  std::int64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

void store_i64(std::byte* p, std::int64_t v) {
  std::memcpy(p, &v, sizeof v);
}

std::size_t data_start(std::size_t n) {
  return kWord * (n + 2);
}

/// Where the formats of a list of `n` items with `data_bytes` of slots begin.
std::size_t formats_start(std::size_t n, std::int64_t data_bytes) {
  return data_start(n) + static_cast<std::size_t>(data_bytes);
}

/// The bytes a list of `n` items with `data_bytes` of slots takes: the codes end it.
std::size_t total_bytes(std::size_t n, std::int64_t data_bytes) {
  return formats_start(n, data_bytes) + (kWord + 1) * n;
}

/// How one value is stored: its struct format, code and bytes (text only).
struct Encoded {
  std::string format;
  Code code;
  std::string_view text;  // str/bytes contents
};

std::string text_format(std::size_t slot_bytes) {
  std::string f = std::to_string(slot_bytes) + "s";
  if (f.size() > kWord)
    throw ValueError("a str/bytes item of " + std::to_string(slot_bytes) +
                     " bytes is too long for a ShareableList slot");
  return f;
}

/// The slot a new str/bytes item of `length` bytes gets (Python counts a str's characters;
/// zmanager counts its UTF-8 bytes, so a non-ASCII str is never cut short).
std::size_t text_slot(std::size_t length) {
  return kWord * (length / kWord + 1);
}

/// `value`'s format and code; for str/bytes the format is left empty (the slot decides it).
Encoded encode(const Value& value) {
  return value.visit([&](const auto& x) -> Encoded {
    using X = std::decay_t<decltype(x)>;
    if constexpr (std::is_same_v<X, std::monostate>)
      return {kNoneFormat, kNone, {}};
    else if constexpr (std::is_same_v<X, bool>)
      return {kBoolFormat, kAsStored, {}};
    else if constexpr (std::is_same_v<X, std::int64_t>)
      return {"q", kAsStored, {}};
    else if constexpr (std::is_same_v<X, std::uint64_t>)
      throw ValueError("int " + std::to_string(x) + " does not fit a ShareableList's 64 bits");
    else if constexpr (std::is_same_v<X, double>)
      return {"d", kAsStored, {}};
    else if constexpr (std::is_same_v<X, std::string>)
      return {"", kStr, x};
    else if constexpr (std::is_same_v<X, Bytes>)
      return {"", kBytes, std::string_view(reinterpret_cast<const char*>(x.data()), x.size())};
    else
      throw TypeError("a ShareableList holds int, float, bool, None, str and bytes, not " +
                      std::string(value.kind()));
  });
}

/// Writes what Python's struct.pack_into(format, buf, slot, value) writes: the format's size.
void write_slot(std::byte* slot, const Encoded& e, const Value& value) {
  if (e.code == kStr || e.code == kBytes) {
    std::size_t n = std::stoul(e.format);
    std::memset(slot, 0, n);
    if (!e.text.empty()) std::memcpy(slot, e.text.data(), e.text.size());  // b"" has no data
    return;
  }
  std::memset(slot, 0, kWord);
  if (e.code == kNone) return;
  value.visit([&](const auto& x) {
    using X = std::decay_t<decltype(x)>;
    if constexpr (std::is_same_v<X, bool>)
      slot[7] = std::byte(x ? 1 : 0);
    else if constexpr (std::is_same_v<X, std::int64_t> || std::is_same_v<X, double>)
      std::memcpy(slot, &x, sizeof x);
  });
}

void write_format(std::byte* at, const std::string& format) {
  std::memset(at, 0, kWord);
  std::memcpy(at, format.data(), format.size());
}

std::string read_format(const std::byte* at) {
  std::size_t n = 0;
  while (n < kWord && at[n] != std::byte{0}) ++n;
  return std::string(reinterpret_cast<const char*>(at), n);
}

/// The byte count of a text format ("16s" → 16), or nullopt for any other format.
std::optional<std::size_t> text_length(const std::string& format) {
  if (format.size() < 2 || format.back() != 's') return std::nullopt;
  std::size_t n = 0;
  for (std::size_t i = 0; i + 1 < format.size(); ++i) {
    if (format[i] < '0' || format[i] > '9') return std::nullopt;
    n = n * 10 + static_cast<std::size_t>(format[i] - '0');
  }
  return n;
}

}  // namespace

ShareableList::ShareableList(std::initializer_list<Value> items, std::optional<std::string> name)
    : ShareableList(std::vector<Value>(items), std::move(name)) {}

/// Every item's format and code, and the slot offsets they give the new list.
struct ShareableList::Plan {
  std::vector<Encoded> items;
  std::vector<std::int64_t> offsets{0};
  std::size_t total() const { return total_bytes(items.size(), offsets.back()); }
};

namespace {

ShareableList::Plan plan(const std::vector<Value>& items) {
  ShareableList::Plan p;
  p.items.reserve(items.size());
  for (const auto& item : items) {
    Encoded e = encode(item);
    std::size_t slot = kWord;
    if (e.code == kStr || e.code == kBytes) {
      slot = text_slot(e.text.size());
      e.format = text_format(slot);
    }
    p.items.push_back(std::move(e));
    p.offsets.push_back(p.offsets.back() + static_cast<std::int64_t>(slot));
  }
  return p;
}

}  // namespace

ShareableList::ShareableList(const std::vector<Value>& items, std::optional<std::string> name)
    : ShareableList(items, plan(items), std::move(name)) {}

ShareableList::ShareableList(const std::vector<Value>& items, const Plan& p,
                             std::optional<std::string> name)
    : shm_(std::move(name), true, static_cast<std::int64_t>(p.total())),
      size_(items.size()),
      offsets_(p.offsets) {
  std::byte* base = shm_.buf().data();
  store_i64(base, static_cast<std::int64_t>(size_));
  for (std::size_t i = 0; i <= size_; ++i) store_i64(base + kWord * (i + 1), offsets_[i]);
  for (std::size_t i = 0; i < size_; ++i) {
    write_slot(slot_at(i), p.items[i], items[i]);
    write_format(format_at(i), p.items[i].format);
    *code_at(i) = std::byte(p.items[i].code);
  }
}

ShareableList::ShareableList(SharedMemory shm) : shm_(std::move(shm)) {
  auto buf = shm_.buf();
  auto invalid = [&](const std::string& why) {
    return ValueError("segment '" + shm_.name() + "' does not hold a ShareableList: " + why);
  };
  if (buf.size() < kWord) throw invalid("too small");
  std::int64_t n = load_i64(buf.data());
  if (n < 0 || static_cast<std::uint64_t>(n) > (buf.size() - 2 * kWord) / kWord)
    throw invalid("length " + std::to_string(n));
  size_ = static_cast<std::size_t>(n);
  offsets_.resize(size_ + 1);
  for (std::size_t i = 0; i <= size_; ++i) {
    offsets_[i] = load_i64(buf.data() + kWord * (i + 1));
    if (i == 0 ? offsets_[0] != 0
               : offsets_[i] < offsets_[i - 1] + static_cast<std::int64_t>(kWord) ||
                     offsets_[i] > static_cast<std::int64_t>(buf.size()))
      throw invalid("slot offset " + std::to_string(i));
  }
  if (total_bytes(size_, offsets_.back()) > buf.size())
    throw invalid("its tables end past the segment");
}

ShareableList ShareableList::attach(const std::string& name) {
  return ShareableList(SharedMemory(name));
}

std::size_t ShareableList::position(std::int64_t index) const {
  auto n = static_cast<std::int64_t>(size_);
  if (index < 0) index += n;
  if (index < 0 || index >= n) throw IndexError("index out of range");
  return static_cast<std::size_t>(index);
}

std::byte* ShareableList::slot_at(std::size_t i) const {
  return shm_.buf().data() + data_start(size_) + offsets_[i];
}

std::byte* ShareableList::format_at(std::size_t i) const {
  return shm_.buf().data() + formats_start(size_, offsets_.back()) + kWord * i;
}

std::byte* ShareableList::code_at(std::size_t i) const {
  return shm_.buf().data() + formats_start(size_, offsets_.back()) + kWord * size_ + i;
}

Value ShareableList::get(std::int64_t index) const {
  std::size_t i = position(index);
  std::string format = read_format(format_at(i));
  auto code = static_cast<std::int8_t>(*code_at(i));
  const std::byte* slot = slot_at(i);
  auto slot_bytes = static_cast<std::size_t>(offsets_[i + 1] - offsets_[i]);
  auto corrupt = [&] {
    return ValueError("item " + std::to_string(i) + " of '" + shm_.name() + "' has format '" +
                      format + "' and code " + std::to_string(code));
  };
  if (auto length = text_length(format)) {
    if (*length > slot_bytes || (code != kStr && code != kBytes && code != kNone)) throw corrupt();
    if (code == kNone) return Value();
    std::size_t used = *length;
    while (used > 0 && slot[used - 1] == std::byte{0}) --used;  // Python strips the padding
    if (code == kStr) return Value(std::string(reinterpret_cast<const char*>(slot), used));
    return Value(Bytes(slot, used));
  }
  if (code != kAsStored && code != kNone) throw corrupt();
  if (format == "q") return code == kNone ? Value() : Value(load_i64(slot));
  if (format == "d") {
    double d;
    std::memcpy(&d, slot, sizeof d);
    return code == kNone ? Value() : Value(d);
  }
  if (format == kBoolFormat || format == kNoneFormat) {
    if (code == kNone) return Value();
    return Value(slot[format.find('?')] != std::byte{0});
  }
  throw corrupt();
}

void ShareableList::set(std::int64_t index, const Value& value) {
  std::size_t i = position(index);
  Encoded e = encode(value);
  if (e.code == kStr || e.code == kBytes) {
    auto allocated = static_cast<std::size_t>(offsets_[i + 1] - offsets_[i]);
    if (e.text.size() > allocated) throw ValueError("bytes/str item exceeds available storage");
    // As Python: a text slot keeps its format, another gets one spanning the whole slot.
    std::string current = read_format(format_at(i));
    auto current_length = text_length(current);
    e.format = current_length && *current_length <= allocated ? current : text_format(allocated);
    if (e.text.size() > std::stoul(e.format))
      throw ValueError("bytes/str item exceeds available storage");
  }
  write_format(format_at(i), e.format);
  *code_at(i) = std::byte(e.code);
  write_slot(slot_at(i), e, value);
}

std::size_t ShareableList::index(const Value& value) const {
  for (std::size_t i = 0; i < size_; ++i)
    if (get(static_cast<std::int64_t>(i)) == value) return i;
  throw ValueError(value.repr() + " not in this container");
}

std::size_t ShareableList::count(const Value& value) const {
  std::size_t n = 0;
  for (std::size_t i = 0; i < size_; ++i) n += get(static_cast<std::int64_t>(i)) == value;
  return n;
}

std::vector<Value> ShareableList::to_vector() const {
  std::vector<Value> out;
  out.reserve(size_);
  for (std::size_t i = 0; i < size_; ++i) out.push_back(get(static_cast<std::int64_t>(i)));
  return out;
}

std::string ShareableList::format() const {
  std::string out;
  for (std::size_t i = 0; i < size_; ++i) out += read_format(format_at(i));
  return out;
}

}  // namespace zmanager
