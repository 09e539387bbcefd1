// The message layer both ends share (internal): op codes, framing, limits, authentication.
// The format is specified in docs/protocol.md; keep the two in step.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <zmq.hpp>

#include "zmanager/wire/codec.hpp"
#include "zmanager/wire/recycling.hpp"
#include "zmanager/wire/tree.hpp"

namespace zmanager::wire {

// 2: a CALL may carry a seventh field, timeout_ms.
// 3: the server may send a client replies together, in one BATCH message.
// 4: a client may send the server calls together, in one BATCH message.
inline constexpr std::uint32_t kProtocolVersion = 6;
inline constexpr std::uint32_t kMinProtocolVersion = 1;

enum class Op : std::uint8_t {
  kHello = 1,
  kChallenge = 2,
  kAuth = 3,
  kWelcome = 4,
  kCall = 5,
  kReply = 6,
  kError = 7,
  kPing = 8,
  kPong = 9,
  kBye = 10,
  kBatch = 11,  // server to client, version 3: replies and errors in one message
};

/// Object id 0 is the server itself (create, shared, release, stats, shutdown, describe).
inline constexpr std::uint64_t kServerObject = 0;

/// Bounds applied to every message before any of it is interpreted (LimitError over them).
struct Limits {
  std::size_t max_message_bytes = std::size_t{256} << 20;  // all frames together
  std::size_t max_body_bytes = std::size_t{64} << 20;      // the msgpack frame
  std::size_t max_frames = 4096;
  std::size_t max_depth = 64;
};

/// The unpacker's bounds for a msgpack body of `len` bytes: each element of an array or entry
/// of a map takes at least one byte, so a declared count above the length is a lie; bounding
/// by the length stops a few bytes from making the unpacker reserve gigabytes.
msgpack::unpack_limit unpack_limits(std::size_t len, const Limits& limits);

/// Error kinds carried by Error messages (see docs/protocol.md).
namespace kind {
inline constexpr std::string_view kRaised = "raised";           // the method threw
inline constexpr std::string_view kBadRequest = "bad_request";  // arity, types, malformed
inline constexpr std::string_view kNotFound = "not_found";      // unknown object / typeid
inline constexpr std::string_view kAuth = "auth";               // handshake failed
inline constexpr std::string_view kVersion = "version";         // unsupported protocol version
inline constexpr std::string_view kLimit = "limit";             // a bound was exceeded
inline constexpr std::string_view kNoSession = "no_session";    // not authenticated / expired
inline constexpr std::string_view kShutdown = "shutdown";       // server is stopping
}  // namespace kind

struct WireError {
  std::string kind, type, message, method, object;
  MSGPACK_DEFINE_MAP(kind, type, message, method, object);
  [[noreturn]] void raise() const;
  static WireError from(const std::exception& e, std::string_view kind, std::string method = {},
                        std::string object = {});
};

/// The frames of one message. A vector of them was allocated and freed for every message sent
/// and received; most messages have one or two frames, whose array is now recycled.
using Frames = std::vector<zmq::message_t, RecyclingArray<zmq::message_t, 2>>;

/// A received message, validated against Limits and unpacked. The body may point into frame 0,
/// so the frames live as long as this does.
class Inbound {
  struct Key {};

 public:
  /// Throws ProtocolError (with a reason fit for a log line) for anything malformed.
  static std::shared_ptr<Inbound> parse(Frames frames, const Limits& limits);
  /// One message of a BATCH (docs/protocol.md, section 2): its body lies in `batch`'s, which
  /// it keeps alive instead of a copy. It has no blobs.
  static std::shared_ptr<Inbound> parse_batched(std::shared_ptr<const Inbound> batch,
                                                std::string_view body, const Limits& limits);
  /// For the parsers only (make_shared needs it public): the tree's arena is part of the
  /// object, so that a message costs one allocation.
  explicit Inbound(Key) {}

  Op op() const { return op_; }
  std::size_t size() const { return fields_.size; }
  const msgpack::object& field(std::size_t i) const;  // throws ProtocolError when absent
  const std::vector<Bytes>& blobs() const { return blobs_; }
  /// The blob frames, for the one decoding of a CALL's arguments (the server's).
  std::vector<Bytes> take_blobs() { return std::move(blobs_); }
  std::size_t bytes() const { return bytes_; }

  /// The payload at field `i`, holding this message alive; `refs_field` lists its references.
  Payload payload(std::size_t i, std::size_t refs_field) const;

 private:
  void read_body(std::string_view body, const Limits& limits);

  Frames frames_;
  std::shared_ptr<const Inbound> batch_;  // that the body lies in, for a batched message
  TreeArena arena_;
  msgpack::object body_;
  msgpack::object_array fields_{};
  Op op_{};
  std::vector<Bytes> blobs_;
  std::size_t bytes_ = 0;
  std::weak_ptr<Inbound> self_;
};

/// The request id of a CALL read from the first bytes of its body without parsing the rest, so
/// that a call refused before parsing (over a limit, malformed further on) is still answered to
/// its caller. 0 when the body does not start like a CALL.
std::uint64_t peek_request_id(std::string_view body);

/// Turns an encoder's output into frames: the body, then one frame per blob.
Frames to_frames(Encoder& enc);
/// Messages held to leave together as one BATCH (docs/protocol.md, section 2): the replies a
/// server's poll step holds for one client, the calls a client sends together. Each body is
/// written as a msgpack bin as it comes, so that making the BATCH costs one copy of the lot and
/// no allocation per message.
class HeldBatch {
 public:
  void add(std::string_view body);
  std::size_t count() const { return count_; }
  /// The message to send: the BATCH, or the one body alone as it came. Empties the batch (its
  /// buffer is kept for the next).
  zmq::message_t take();

 private:
  std::string bins_;
  std::size_t count_ = 0;
  std::size_t first_header_ = 0;  // the first bin's header length, to send one body alone
};
/// Reads a uint64 field, throwing ProtocolError otherwise.
std::uint64_t as_u64(const msgpack::object& o, std::string_view what);
std::string as_string(const msgpack::object& o, std::string_view what);
/// The same without a copy: valid while the message it points into is.
std::string_view as_string_view(const msgpack::object& o, std::string_view what);
std::vector<std::uint64_t> as_id_list(const msgpack::object& o, std::string_view what);

/// Sends all frames as one multipart message; `more_after` when an envelope precedes more parts.
void send_frames(zmq::socket_ref socket, Frames& frames);
/// Receives one whole multipart message without blocking; empty when none is ready. With
/// `wait`, waits for it up to the socket's receive timeout (ZMQ_RCVTIMEO) first.
std::optional<Frames> recv_frames(zmq::socket_ref socket, bool wait = false);

// ---- authentication: mutual HMAC-SHA256 challenge-response (docs/protocol.md, "Handshake") ----
using Nonce = std::array<std::uint8_t, 32>;
using Mac = std::array<std::uint8_t, 32>;
Nonce random_nonce();
std::uint64_t random_u64();
/// HMAC-SHA256(key, label || first || second).
Mac proof(std::string_view key, std::string_view label, const Nonce& first, const Nonce& second);
bool equal_constant_time(const msgpack::object& received, const Mac& expected);
inline constexpr std::string_view kServerLabel = "zmanager-server-proof-v1";
inline constexpr std::string_view kClientLabel = "zmanager-client-proof-v1";
bool read_nonce(const msgpack::object& o, Nonce& out);

/// Lower-case hex of some bytes (peer ids in logs, generated authkeys).
std::string to_hex(std::string_view bytes);

/// ZeroMQ cannot bind port 0; "tcp://host:0" means "any free port" as it does for sockets.
std::string zmq_bind_endpoint(std::string_view address);

}  // namespace zmanager::wire
