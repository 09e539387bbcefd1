#include "zmanager/wire/tree.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <cstring>
#include <vector>

#include "zmanager/errors.hpp"
#include "zmanager/wire/protocol.hpp"

namespace zmanager::wire {

void* TreeArena::allocate_bytes(std::size_t bytes) {
  // Every node type is a whole number of msgpack::objects, so the buffer stays aligned.
  if (bytes <= kInlineBytes - inline_used_) {
    void* at = inline_ + inline_used_;
    inline_used_ += bytes;
    return at;
  }
  if (!zone_) zone_.emplace(std::clamp<std::size_t>(bytes * 2, 1024, MSGPACK_ZONE_CHUNK_SIZE));
  return zone_->allocate_align(bytes, alignof(msgpack::object));
}

namespace {

// A container whose elements are being read: arrays fill `items`, maps `pairs` (keys and values
// alternately, `filled` counting both).
struct Open {
  msgpack::object* items;
  msgpack::object_kv* pairs;
  std::uint32_t slots;
  std::uint32_t filled;

  msgpack::object* next() {
    std::uint32_t at = filled++;
    if (items) return &items[at];
    return at % 2 == 0 ? &pairs[at / 2].key : &pairs[at / 2].val;
  }
};

// The open containers, innermost last: on the C stack for the usual depths, which the limit
// bounds.
class OpenStack {
 public:
  bool empty() const { return size_ == 0; }
  std::size_t size() const { return size_; }
  Open& top() { return size_ <= kInline ? inline_[size_ - 1] : spilled_.back(); }
  void push(const Open& open) {
    if (size_ < kInline)
      inline_[size_] = open;
    else
      spilled_.push_back(open);
    ++size_;
  }
  void pop() {
    if (size_ > kInline) spilled_.pop_back();
    --size_;
  }

 private:
  static constexpr std::size_t kInline = 64;
  std::array<Open, kInline> inline_;
  std::vector<Open> spilled_;
  std::size_t size_ = 0;
};

class Reader {
 public:
  Reader(std::string_view body, const Limits& limits, TreeArena& arena)
      : at_(reinterpret_cast<const std::uint8_t*>(body.data())),
        end_(at_ + body.size()),
        body_size_(body.size()),
        max_depth_(limits.max_depth),
        arena_(arena) {}

  msgpack::object read() {
    msgpack::object root;
    read_value(root);
    while (!open_.empty()) {
      Open& top = open_.top();
      // The elements of one container in a row, until one opens a container of its own.
      bool opened = false;
      while (!opened && top.filled < top.slots) {
        --unfilled_;
        opened = read_value(*top.next());
      }
      if (!opened) open_.pop();
    }
    if (at_ != end_) throw ProtocolError("malformed msgpack body: trailing bytes after the value");
    return root;
  }

 private:
  const std::uint8_t* at_;
  const std::uint8_t* end_;
  std::size_t body_size_;
  std::size_t max_depth_;
  TreeArena& arena_;
  OpenStack open_;
  std::size_t unfilled_ = 0;  // the elements the open containers still wait for

  [[noreturn]] static void cut_short() {
    throw ProtocolError("malformed msgpack body: a value is cut short");
  }
  std::size_t left() const { return static_cast<std::size_t>(end_ - at_); }
  const char* take(std::size_t n) {
    if (n > left()) cut_short();
    const char* p = reinterpret_cast<const char*>(at_);
    at_ += n;
    return p;
  }
  template <class T>
  T big_endian() {  // an unsigned integer of sizeof(T) bytes
    T v;
    std::memcpy(&v, take(sizeof v), sizeof v);
    if constexpr (std::endian::native == std::endian::little && sizeof(T) > 1) v = byteswap(v);
    return v;
  }
  template <class T>
  static T byteswap(T v) {
    if constexpr (sizeof(T) == 2) return static_cast<T>(__builtin_bswap16(v));
    if constexpr (sizeof(T) == 4) return __builtin_bswap32(v);
    if constexpr (sizeof(T) == 8) return __builtin_bswap64(v);
  }

  static void integer(msgpack::object& o, std::int64_t v) {
    // As msgpack-c: a signed encoding of a value >= 0 is a positive integer.
    if (v >= 0) {
      o.type = msgpack::type::POSITIVE_INTEGER;
      o.via.u64 = static_cast<std::uint64_t>(v);
    } else {
      o.type = msgpack::type::NEGATIVE_INTEGER;
      o.via.i64 = v;
    }
  }
  static void positive(msgpack::object& o, std::uint64_t v) {
    o.type = msgpack::type::POSITIVE_INTEGER;
    o.via.u64 = v;
  }
  void str(msgpack::object& o, std::uint32_t size) {
    o.type = msgpack::type::STR;
    o.via.str.ptr = take(size);
    o.via.str.size = size;
  }
  void bin(msgpack::object& o, std::uint32_t size) {
    o.type = msgpack::type::BIN;
    o.via.bin.ptr = take(size);
    o.via.bin.size = size;
  }
  void ext(msgpack::object& o, std::uint32_t data_size) {
    // As msgpack-c: `ptr` points at the type byte, `size` counts the data after it.
    o.type = msgpack::type::EXT;
    o.via.ext.ptr = take(std::size_t{1} + data_size);
    o.via.ext.size = data_size;
  }

  // Bounded as msgpack-c's unpacker is by wire::unpack_limits: no more elements (pairs: half
  // as many) than the body has bytes, no deeper than the limit. And since every element takes
  // at least a byte, the elements that all open containers still wait for cannot outnumber the
  // bytes left: a body cut short is refused before anything is allocated for what it lacks,
  // and a tree never has more nodes than its body has bytes (msgpack-c allocated whatever each
  // container declared, up to the body's size at each of the 64 levels).
  void check_open(std::size_t count, std::size_t most, std::size_t slots) {
    if (count > most)
      throw LimitError("message body over a size limit: a container of " + std::to_string(count) +
                       " elements in a body of " + std::to_string(body_size_) + " bytes");
    if (open_.size() + 1 > max_depth_)
      throw LimitError("message body over the depth limit of " + std::to_string(max_depth_));
    if (unfilled_ + slots > left()) cut_short();
    unfilled_ += slots;
  }
  bool array(msgpack::object& o, std::uint32_t count) {
    check_open(count, body_size_, count);
    o.type = msgpack::type::ARRAY;
    o.via.array.size = count;
    o.via.array.ptr = nullptr;
    if (count == 0) return false;
    o.via.array.ptr = arena_.allocate<msgpack::object>(count);
    open_.push(Open{o.via.array.ptr, nullptr, count, 0});
    return true;
  }
  bool map(msgpack::object& o, std::uint32_t count) {
    check_open(count, body_size_ / 2, std::size_t{2} * count);
    o.type = msgpack::type::MAP;
    o.via.map.size = count;
    o.via.map.ptr = nullptr;
    if (count == 0) return false;
    o.via.map.ptr = arena_.allocate<msgpack::object_kv>(count);
    open_.push(Open{nullptr, o.via.map.ptr, 2 * count, 0});
    return true;
  }

  // Reads the value at the cursor into `o`; true if it is a container whose elements are to
  // be read next.
  bool read_value(msgpack::object& o) {
    if (at_ == end_) cut_short();
    const std::uint8_t tag = *at_++;
    if (tag <= 0x8f) {
      if (tag <= 0x7f) {
        positive(o, tag);
        return false;
      }
      return map(o, tag & 0x0fu);
    }
    if (tag <= 0x9f) return array(o, tag & 0x0fu);
    switch (tag) {
      case 0xdc:
        return array(o, big_endian<std::uint16_t>());
      case 0xdd:
        return array(o, big_endian<std::uint32_t>());
      case 0xde:
        return map(o, big_endian<std::uint16_t>());
      case 0xdf:
        return map(o, big_endian<std::uint32_t>());
      default:
        read_scalar(o, tag);
        return false;
    }
  }

  void read_scalar(msgpack::object& o, std::uint8_t tag) {
    if (tag >= 0xe0) return integer(o, static_cast<std::int8_t>(tag));
    if (tag <= 0xbf) return str(o, tag & 0x1fu);
    switch (tag) {
      case 0xc0:
        o.type = msgpack::type::NIL;
        return;
      case 0xc2:
      case 0xc3:
        o.type = msgpack::type::BOOLEAN;
        o.via.boolean = tag == 0xc3;
        return;
      case 0xc4:
        return bin(o, big_endian<std::uint8_t>());
      case 0xc5:
        return bin(o, big_endian<std::uint16_t>());
      case 0xc6:
        return bin(o, big_endian<std::uint32_t>());
      case 0xc7: {
        std::uint32_t size = big_endian<std::uint8_t>();
        return ext(o, size);
      }
      case 0xc8: {
        std::uint32_t size = big_endian<std::uint16_t>();
        return ext(o, size);
      }
      case 0xc9: {
        std::uint32_t size = big_endian<std::uint32_t>();
        return ext(o, size);
      }
      case 0xca: {
        o.type = msgpack::type::FLOAT32;
        o.via.f64 = std::bit_cast<float>(big_endian<std::uint32_t>());
        return;
      }
      case 0xcb: {
        o.type = msgpack::type::FLOAT64;
        o.via.f64 = std::bit_cast<double>(big_endian<std::uint64_t>());
        return;
      }
      case 0xcc:
        return positive(o, big_endian<std::uint8_t>());
      case 0xcd:
        return positive(o, big_endian<std::uint16_t>());
      case 0xce:
        return positive(o, big_endian<std::uint32_t>());
      case 0xcf:
        return positive(o, big_endian<std::uint64_t>());
      case 0xd0:
        return integer(o, static_cast<std::int8_t>(big_endian<std::uint8_t>()));
      case 0xd1:
        return integer(o, static_cast<std::int16_t>(big_endian<std::uint16_t>()));
      case 0xd2:
        return integer(o, static_cast<std::int32_t>(big_endian<std::uint32_t>()));
      case 0xd3:
        return integer(o, static_cast<std::int64_t>(big_endian<std::uint64_t>()));
      case 0xd4:
        return ext(o, 1);
      case 0xd5:
        return ext(o, 2);
      case 0xd6:
        return ext(o, 4);
      case 0xd7:
        return ext(o, 8);
      case 0xd8:
        return ext(o, 16);
      case 0xd9:
        return str(o, big_endian<std::uint8_t>());
      case 0xda:
        return str(o, big_endian<std::uint16_t>());
      case 0xdb:
        return str(o, big_endian<std::uint32_t>());
      default:  // 0xc1, which no format uses (the containers' tags are read_value's)
        throw ProtocolError("malformed msgpack body: byte 0xc1, which no format uses");
    }
  }
};

}  // namespace

msgpack::object read_tree(std::string_view body, const Limits& limits, TreeArena& arena) {
  return Reader(body, limits, arena).read();
}

}  // namespace zmanager::wire
