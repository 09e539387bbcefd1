#include "request_decoder.hpp"

#include <array>
#include <bit>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "zmanager/expose.hpp"
#include "zmanager/value.hpp"
#include "zmanager/wire/protocol.hpp"
#include "zmanager/wire/segment.hpp"
#include "zmanager/wire/stream.hpp"
#include "zmanager/wire/tree.hpp"

namespace zmanager::fuzz {
namespace {

// References that arrive in a request become handles with no channel: nothing is looked up.
class Hooks final : public wire::RefHooks {
 public:
  std::shared_ptr<detail::ObjectRef> on_import(std::uint64_t id, std::string_view type) override {
    return std::make_shared<detail::ObjectRef>(nullptr, id, std::string(type));
  }
};

// Small limits, so that the fuzzer reaches them; the rules are the same at any size.
wire::Limits fuzz_limits() {
  wire::Limits limits;
  limits.max_message_bytes = 1 << 16;
  limits.max_body_bytes = 1 << 16;
  limits.max_frames = 8;
  limits.max_depth = 16;
  return limits;
}

// Input layout: byte 0 says how many side frames (blobs) follow (its value mod 4); each is a
// length byte and that many bytes; the rest is the msgpack body. Short inputs are bodies alone.
wire::Frames split(const std::uint8_t* data, std::size_t size) {
  wire::Frames frames;
  std::vector<zmq::message_t> blobs;
  std::size_t at = 0;
  std::size_t count = size > 0 ? data[at++] % 4 : 0;
  for (std::size_t i = 0; i < count && at < size; ++i) {
    std::size_t declared = data[at++];
    std::size_t len = std::min(declared, size - at);
    blobs.emplace_back(data + at, len);
    at += len;
  }
  frames.emplace_back(data + at, size - at);
  for (auto& b : blobs) frames.push_back(std::move(b));
  return frames;
}

// Each decoding is tried on its own: a typed rejection of one does not hide the next.
template <class F>
void attempt(F&& f) {
  try {
    f();
  } catch (const Error&) {
  }
}

void decode_call(const wire::Inbound& in) {
  attempt([&] { wire::as_u64(in.field(1), "request id"); });
  attempt([&] { wire::as_u64(in.field(2), "object id"); });
  attempt([&] { wire::as_string(in.field(3), "method"); });
  attempt([&] { wire::as_id_list(in.field(5), "refs"); });
  attempt([&] {
    if (in.size() > 6) wire::as_u64(in.field(6), "timeout_ms");
  });
  Hooks hooks;
  wire::DecodeScope scope(in.blobs(), &hooks);
  const msgpack::object* args = nullptr;
  attempt([&] { args = &in.field(4); });
  if (!args) return;
  // The parameter shapes of the built-ins (queue put, lock acquire, dict setitem, release) and
  // of typed user methods.
  attempt(
      [&] { detail::decode_args<std::tuple<Value, bool, std::optional<double>>>(*args, "put"); });
  attempt([&] {
    detail::decode_args<std::tuple<std::uint64_t, bool, std::optional<double>>>(*args, "acquire");
  });
  attempt([&] { detail::decode_args<std::tuple<Value, Value>>(*args, "setitem"); });
  attempt([&] { detail::decode_args<std::tuple<std::vector<std::uint64_t>>>(*args, "release"); });
  attempt([&] { detail::decode_args<std::tuple<std::string, msgpack::object>>(*args, "create"); });
  attempt([&] { detail::decode_args<std::tuple<int, double, std::string, Bytes>>(*args, "user"); });
  attempt([&] {
    detail::decode_args<std::tuple<std::vector<std::string>, std::map<std::string, int>>>(*args,
                                                                                          "user");
  });
  attempt([&] { wire::convert<Value>(*args, "arguments"); });
}

void decode_answer(const wire::Inbound& in) {
  attempt([&] { wire::as_u64(in.field(1), "request id"); });
  if (in.op() == wire::Op::kError) {
    attempt([&] {
      wire::WireError e;
      try {
        in.field(2).convert(e);
      } catch (const msgpack::type_error&) {
        throw ProtocolError("malformed error");  // what the client does with it
      }
    });
    return;
  }
  attempt([&] {
    auto payload = in.payload(2, 3);
    Hooks hooks;
    wire::DecodeScope scope(payload.blobs, &hooks);
    wire::convert<Value>(payload.value, "result");
  });
}

// What a server does with the transport's own messages and blob frames in segments (protocol.md
// 1.2): their bodies are read as the server reads them, and segment 1, 64 KiB here, is the one
// lent to this connection.
struct ServerLikeSegments final : wire::SegmentEndpoint {
  void on_control(wire::StreamKind kind, std::string_view body) override {
    if (kind == wire::StreamKind::kLease)
      wire::decode_lease(body);
    else if (kind == wire::StreamKind::kRelease)
      wire::decode_segment_ids(body);
    else
      throw ProtocolError("a client sent a server's stream control message");
  }
  zmq::message_t frame_in(std::uint64_t segment, std::uint64_t offset,
                          std::uint64_t length) override {
    static std::array<char, 64 * 1024> lent{};
    if (segment != 1 || offset > lent.size() || length > lent.size() - offset)
      throw ValueError("not lent");
    return zmq::message_t(lent.data() + offset, static_cast<std::size_t>(length));
  }
};

// The same bytes as the same-host transport's stream (protocol.md 1.1), arriving in small
// pieces: every message it frames is parsed as one from ZeroMQ would be. Returns how many
// parsed.
std::size_t decode_stream(const std::uint8_t* data, std::size_t size, const wire::Limits& limits) {
  ServerLikeSegments segments;
  wire::StreamReader reader(limits, &segments);
  wire::StreamInput in;
  constexpr std::size_t kPiece = 13;
  try {
    for (std::size_t at = 0; at < size; at += kPiece)
      reader.feed(reinterpret_cast<const char*>(data) + at, std::min(kPiece, size - at), in);
  } catch (const Error&) {
  }
  std::size_t parsed = 0;
  for (auto& frames : in.messages)
    attempt([&] {
      wire::Inbound::parse(std::move(frames), limits);
      ++parsed;
    });
  return parsed;
}

void decode_message(const std::shared_ptr<const wire::Inbound>& in, const wire::Limits& limits,
                    bool batched);

// A ZeroMQ message whose first frame is the transport's (protocol.md 1.3), read as the server
// reads it: a control message's body as its kind says (and, for a client's sake, OFFER and MAP
// as a client reads them), or the placement of the blob frames that follow, whose message is
// then read with each placed frame taken from segment 1 as decode_stream() does. False when the
// first frame is not the transport's.
bool decode_transport_frame(wire::Frames& frames, const wire::Limits& limits) {
  if (frames.empty() || !wire::is_transport_frame(frames.front())) return false;
  attempt([&] {
    const wire::TransportFrame head = wire::read_transport_frame(frames.front());
    switch (head.kind) {
      case wire::StreamKind::kMessage: {
        const auto places = wire::decode_placements(head.body, frames.size() - 1);
        wire::Frames message(std::make_move_iterator(frames.begin() + 1),
                             std::make_move_iterator(frames.end()));
        ServerLikeSegments segments;
        for (const auto& place : places) {
          if (message[place.frame].size() != 0)
            throw ValueError("a placed frame that is not empty");
          message[place.frame] = segments.frame_in(place.segment, place.offset, place.length);
        }
        decode_message(wire::Inbound::parse(std::move(message), limits), limits, false);
        return;
      }
      case wire::StreamKind::kLease:
        wire::decode_lease(head.body);
        return;
      case wire::StreamKind::kRelease:
      case wire::StreamKind::kLend:
        wire::decode_segment_ids(head.body);
        return;
      case wire::StreamKind::kProof:
        wire::decode_proof(head.body);
        return;
      case wire::StreamKind::kOffer:
        wire::decode_offer(head.body);
        return;
      case wire::StreamKind::kMap:
        wire::decode_segment_sizes(head.body);
        return;
    }
  });
  return true;
}

// A BATCH (versions 3 and 4): each bin a message of its own, as the server and the client read
// them; nested batches are refused by both.
void decode_batch(const std::shared_ptr<const wire::Inbound>& in, const wire::Limits& limits) {
  attempt([&] {
    const msgpack::object& list = in->field(1);
    if (list.type != msgpack::type::ARRAY) throw ProtocolError("a batch holds no array");
    for (std::uint32_t i = 0; i < list.via.array.size && i < 1024; ++i) {
      const msgpack::object& bin = list.via.array.ptr[i];
      if (bin.type != msgpack::type::BIN) throw ProtocolError("a batched message is not bin");
      attempt([&] {
        decode_message(
            wire::Inbound::parse_batched(in, {bin.via.bin.ptr, bin.via.bin.size}, limits), limits,
            true);
      });
    }
  });
}

void decode_message(const std::shared_ptr<const wire::Inbound>& message, const wire::Limits& limits,
                    bool batched) {
  const wire::Inbound& in = *message;
  switch (in.op()) {
    case wire::Op::kHello:
      attempt([&] { wire::as_u64(in.field(1), "protocol version"); });
      attempt([&] {
        wire::Nonce nonce;
        wire::read_nonce(in.field(2), nonce);
      });
      attempt([&] { wire::as_string(in.field(3), "client name"); });
      break;
    case wire::Op::kAuth:
      attempt([&] { wire::equal_constant_time(in.field(1), wire::Mac{}); });
      break;
    case wire::Op::kCall:
      decode_call(in);
      break;
    case wire::Op::kReply:
    case wire::Op::kError:
      decode_answer(in);
      break;
    case wire::Op::kBatch:
      if (!batched) decode_batch(message, limits);
      break;
    default:
      break;
  }
}

// Trees compared node by node; floats by their bits, so that a NaN equals itself.
bool same_tree(const msgpack::object& a, const msgpack::object& b) {
  if (a.type != b.type) return false;
  switch (a.type) {
    case msgpack::type::NIL:
      return true;
    case msgpack::type::BOOLEAN:
      return a.via.boolean == b.via.boolean;
    case msgpack::type::POSITIVE_INTEGER:
      return a.via.u64 == b.via.u64;
    case msgpack::type::NEGATIVE_INTEGER:
      return a.via.i64 == b.via.i64;
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64:
      return std::bit_cast<std::uint64_t>(a.via.f64) == std::bit_cast<std::uint64_t>(b.via.f64);
    case msgpack::type::STR:
      return std::string_view(a.via.str.ptr, a.via.str.size) ==
             std::string_view(b.via.str.ptr, b.via.str.size);
    case msgpack::type::BIN:
      return std::string_view(a.via.bin.ptr, a.via.bin.size) ==
             std::string_view(b.via.bin.ptr, b.via.bin.size);
    case msgpack::type::EXT:
      return a.via.ext.type() == b.via.ext.type() &&
             std::string_view(a.via.ext.data(), a.via.ext.size) ==
                 std::string_view(b.via.ext.data(), b.via.ext.size);
    case msgpack::type::ARRAY:
      if (a.via.array.size != b.via.array.size) return false;
      for (std::uint32_t i = 0; i < a.via.array.size; ++i)
        if (!same_tree(a.via.array.ptr[i], b.via.array.ptr[i])) return false;
      return true;
    case msgpack::type::MAP:
      if (a.via.map.size != b.via.map.size) return false;
      for (std::uint32_t i = 0; i < a.via.map.size; ++i)
        if (!same_tree(a.via.map.ptr[i].key, b.via.map.ptr[i].key) ||
            !same_tree(a.via.map.ptr[i].val, b.via.map.ptr[i].val))
          return false;
      return true;
  }
  return false;
}

}  // namespace

bool tree_agrees_with_msgpack(const std::uint8_t* data, std::size_t size, std::size_t max_depth) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  wire::Limits limits;
  limits.max_depth = max_depth;
  std::optional<msgpack::object_handle> reference;
  try {
    std::size_t offset = 0;
    auto handle = msgpack::unpack(body.data(), body.size(), offset, nullptr, nullptr,
                                  wire::unpack_limits(body.size(), limits));
    if (offset == body.size()) reference = std::move(handle);
  } catch (const std::exception&) {
  }
  wire::TreeArena arena;
  std::optional<msgpack::object> read;
  try {
    read = wire::read_tree(body, limits, arena);
  } catch (const Error&) {
  }
  if (!reference || !read) return !reference && !read;
  return same_tree(reference->get(), *read);
}

bool decode_request(const std::uint8_t* data, std::size_t size) {
  static const wire::Limits limits = fuzz_limits();
  if (!tree_agrees_with_msgpack(data, size, limits.max_depth))
    throw std::logic_error("wire::read_tree and msgpack-c read these bytes differently");
  const bool framed = decode_stream(data, size, limits) > 0;
  auto frames = split(data, size);
  if (decode_transport_frame(frames, limits)) return true;
  std::shared_ptr<wire::Inbound> in;
  try {
    in = wire::Inbound::parse(std::move(frames), limits);
  } catch (const Error&) {
    return framed;
  }
  decode_message(in, limits, false);
  return true;
}

}  // namespace zmanager::fuzz
