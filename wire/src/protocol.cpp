#include "zmanager/wire/protocol.hpp"
#include "zmanager/wire/recycling.hpp"

#include <sodium.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace zmanager::wire {

void WireError::raise() const {
  throw_remote_error(kind, type, message, method, object);
}

WireError WireError::from(const std::exception& e, std::string_view k, std::string method,
                          std::string object) {
  return WireError{std::string(k), error_type_name(e), e.what(), std::move(method),
                   std::move(object)};
}

namespace {

// Bodies up to this size are copied into their frame rather than handed over.
constexpr std::size_t kCopiedBodyBytes = 4096;

}  // namespace

msgpack::unpack_limit unpack_limits(std::size_t len, const Limits& limits) {
  return msgpack::unpack_limit(len, len / 2, len, len, len, limits.max_depth);
}

std::uint64_t peek_request_id(std::string_view body) {
  const auto* p = reinterpret_cast<const std::uint8_t*>(body.data());
  const std::size_t n = body.size();
  std::size_t at;
  // The array header: fixarray, array16 or array32, of at least six fields.
  if (n >= 1 && (p[0] & 0xf0) == 0x90 && (p[0] & 0x0f) >= 6)
    at = 1;
  else if (n >= 3 && p[0] == 0xdc)
    at = 3;
  else if (n >= 5 && p[0] == 0xdd)
    at = 5;
  else
    return 0;
  if (at >= n || p[at] != static_cast<std::uint8_t>(Op::kCall)) return 0;
  ++at;
  if (at >= n) return 0;
  const std::uint8_t tag = p[at++];
  if (tag <= 0x7f) return tag;  // positive fixint
  std::size_t width = tag == 0xcc ? 1 : tag == 0xcd ? 2 : tag == 0xce ? 4 : tag == 0xcf ? 8 : 0;
  if (width == 0 || at + width > n) return 0;
  std::uint64_t id = 0;
  for (std::size_t i = 0; i < width; ++i) id = (id << 8) | p[at + i];  // big-endian
  return id;
}

std::shared_ptr<Inbound> Inbound::parse(Frames frames, const Limits& limits) {
  if (frames.empty()) throw ProtocolError("empty message");
  if (frames.size() > limits.max_frames)
    throw LimitError("too many frames: " + std::to_string(frames.size()));
  std::size_t bytes = 0;
  for (auto& f : frames) bytes += f.size();
  if (bytes > limits.max_message_bytes)
    throw LimitError("message of " + std::to_string(bytes) + " bytes exceeds the limit of " +
                     std::to_string(limits.max_message_bytes));
  auto in = std::allocate_shared<Inbound>(Recycling<Inbound>(), Key{});
  in->self_ = in;
  in->bytes_ = bytes;
  // Moving the vector keeps every element in place; moving one small zmq message would not (its
  // bytes live inside the message object), and the body below points into frame 0.
  in->frames_ = std::move(frames);
  for (std::size_t i = 1; i < in->frames_.size(); ++i) {
    // The blob adopts the received frame: the Bytes handed to user code is that memory.
    auto frame = std::make_shared<zmq::message_t>(std::move(in->frames_[i]));
    auto* data = static_cast<std::byte*>(frame->data());
    std::size_t size = frame->size();
    in->blobs_.emplace_back(std::shared_ptr<void>(frame, data), data, size);
  }
  in->frames_.resize(1);
  in->read_body(in->frames_.front().to_string_view(), limits);
  return in;
}

std::shared_ptr<Inbound> Inbound::parse_batched(std::shared_ptr<const Inbound> batch,
                                                std::string_view body, const Limits& limits) {
  auto in = std::allocate_shared<Inbound>(Recycling<Inbound>(), Key{});
  in->self_ = in;
  in->bytes_ = body.size();
  in->batch_ = std::move(batch);
  in->read_body(body, limits);
  return in;
}

void Inbound::read_body(std::string_view body, const Limits& limits) {
  if (body.size() > limits.max_body_bytes)
    throw LimitError("message body of " + std::to_string(body.size()) +
                     " bytes exceeds the limit of " + std::to_string(limits.max_body_bytes));
  body_ = read_tree(body, limits, arena_);
  if (body_.type != msgpack::type::ARRAY || body_.via.array.size == 0)
    throw ProtocolError("message body is not a non-empty array");
  fields_ = body_.via.array;
  const msgpack::object& op = fields_.ptr[0];
  if (op.type != msgpack::type::POSITIVE_INTEGER || op.via.u64 < 1 ||
      op.via.u64 > static_cast<std::uint64_t>(Op::kBatch))
    throw ProtocolError("unknown message op");
  op_ = static_cast<Op>(op.via.u64);
}

const msgpack::object& Inbound::field(std::size_t i) const {
  if (i >= fields_.size) throw ProtocolError("message has too few fields");
  return fields_.ptr[i];
}

Payload Inbound::payload(std::size_t i, std::size_t refs_field) const {
  Payload p;
  p.value = field(i);
  p.blobs.reserve(blobs_.size());
  for (const auto& b : blobs_) p.blobs.push_back(b.share());  // the frames, not copies
  if (refs_field < size()) p.refs = as_id_list(field(refs_field), "refs");
  p.keepalive = self_.lock();
  return p;
}

std::uint64_t as_u64(const msgpack::object& o, std::string_view what) {
  if (o.type != msgpack::type::POSITIVE_INTEGER)
    throw ProtocolError(std::string(what) + " must be an unsigned integer");
  return o.via.u64;
}

std::string_view as_string_view(const msgpack::object& o, std::string_view what) {
  if (o.type != msgpack::type::STR) throw ProtocolError(std::string(what) + " must be a string");
  return {o.via.str.ptr, o.via.str.size};
}

std::string as_string(const msgpack::object& o, std::string_view what) {
  return std::string(as_string_view(o, what));
}

std::vector<std::uint64_t> as_id_list(const msgpack::object& o, std::string_view what) {
  if (o.type != msgpack::type::ARRAY) throw ProtocolError(std::string(what) + " must be an array");
  std::vector<std::uint64_t> ids;
  ids.reserve(o.via.array.size);
  for (std::uint32_t i = 0; i < o.via.array.size; ++i)
    ids.push_back(as_u64(o.via.array.ptr[i], what));
  return ids;
}

Frames to_frames(Encoder& enc) {
  Frames frames;
  frames.reserve(1 + enc.blobs().size());
  std::size_t body_size = enc.body().size();
  if (body_size <= kCopiedBodyBytes) {
    // Copied: ZeroMQ keeps a small message inside the message object itself, with no
    // allocation, and frees a mid-sized one it allocated itself.
    frames.emplace_back(enc.body().data(), body_size);
  } else {
    char* body = enc.body().release();  // the frame takes the buffer over instead of copying it
    frames.emplace_back(
        body, body_size, [](void* data, void*) { std::free(data); }, nullptr);
  }
  for (auto& blob : enc.blobs()) {
    // Hand the blob's storage to ZeroMQ without copying; it is freed when the frame is sent.
    auto* holder = new Bytes(std::move(blob));
    frames.emplace_back(
        holder->data(), holder->size(), [](void*, void* hint) { delete static_cast<Bytes*>(hint); },
        holder);
  }
  enc.blobs().clear();
  return frames;
}

namespace {
/// msgpack's packer writes into any stream with write(); this one appends to a string.
struct StringWriter {
  std::string& out;
  void write(const char* data, std::size_t size) { out.append(data, size); }
};
}  // namespace

void HeldBatch::add(std::string_view body) {
  const std::size_t before = bins_.size();
  StringWriter writer{bins_};
  msgpack::packer<StringWriter> pk(writer);
  pk.pack_bin(static_cast<std::uint32_t>(body.size()));
  if (count_++ == 0) first_header_ = bins_.size() - before;
  bins_.append(body);
}

zmq::message_t HeldBatch::take() {
  zmq::message_t message;
  if (count_ == 1) {
    message.rebuild(bins_.data() + first_header_, bins_.size() - first_header_);
  } else {
    std::string header;
    StringWriter writer{header};
    msgpack::packer<StringWriter> pk(writer);
    pk.pack_array(2);
    pk.pack(static_cast<std::uint8_t>(Op::kBatch));
    pk.pack_array(static_cast<std::uint32_t>(count_));
    message.rebuild(header.size() + bins_.size());
    auto* out = static_cast<char*>(message.data());
    std::memcpy(out, header.data(), header.size());
    std::memcpy(out + header.size(), bins_.data(), bins_.size());
  }
  // A buffer grown by a burst of large messages is not kept: a server keeps one per peer.
  constexpr std::size_t kMostKept = 64 * 1024;
  if (bins_.capacity() > kMostKept)
    std::string().swap(bins_);
  else
    bins_.clear();
  count_ = 0;
  return message;
}

void send_frames(zmq::socket_ref socket, Frames& frames) {
  for (std::size_t i = 0; i < frames.size(); ++i) {
    auto flags = i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none;
    socket.send(frames[i], flags);
  }
}

std::optional<Frames> recv_frames(zmq::socket_ref socket, bool wait) {
  zmq::message_t part;
  if (!socket.recv(part, wait ? zmq::recv_flags::none : zmq::recv_flags::dontwait))
    return std::nullopt;
  Frames frames;
  // Room for a routing id and a body, the shape of every message a server reads: one
  // allocation instead of two.
  frames.reserve(2);
  bool more = part.more();
  frames.push_back(std::move(part));
  while (more) {
    zmq::message_t next;
    (void)socket.recv(next, zmq::recv_flags::none);  // the rest of a multipart is already here
    more = next.more();
    frames.push_back(std::move(next));
  }
  return frames;
}

namespace {
void ensure_sodium() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (sodium_init() < 0) throw Error("libsodium failed to initialise");
  });
}
}  // namespace

Nonce random_nonce() {
  ensure_sodium();
  Nonce n;
  randombytes_buf(n.data(), n.size());
  return n;
}

std::uint64_t random_u64() {
  ensure_sodium();
  std::uint64_t v;
  randombytes_buf(&v, sizeof v);
  return v;
}

Mac proof(std::string_view key, std::string_view label, const Nonce& first, const Nonce& second) {
  ensure_sodium();
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, reinterpret_cast<const unsigned char*>(key.data()), key.size());
  crypto_auth_hmacsha256_update(&st, reinterpret_cast<const unsigned char*>(label.data()),
                                label.size());
  crypto_auth_hmacsha256_update(&st, first.data(), first.size());
  crypto_auth_hmacsha256_update(&st, second.data(), second.size());
  Mac mac;
  crypto_auth_hmacsha256_final(&st, mac.data());
  return mac;
}

bool equal_constant_time(const msgpack::object& received, const Mac& expected) {
  if (received.type != msgpack::type::BIN || received.via.bin.size != expected.size()) return false;
  return sodium_memcmp(received.via.bin.ptr, expected.data(), expected.size()) == 0;
}

bool read_nonce(const msgpack::object& o, Nonce& out) {
  if (o.type != msgpack::type::BIN || o.via.bin.size != out.size()) return false;
  std::copy_n(reinterpret_cast<const std::uint8_t*>(o.via.bin.ptr), out.size(), out.begin());
  return true;
}

std::string to_hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  return out;
}

std::string zmq_bind_endpoint(std::string_view address) {
  std::string a(address);
  if (a.size() > 2 && a.ends_with(":0") && a.starts_with("tcp://")) a.replace(a.size() - 1, 1, "*");
  return a;
}

}  // namespace zmanager::wire
