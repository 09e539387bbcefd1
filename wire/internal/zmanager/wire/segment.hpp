// Shared segments (internal): how large blob frames cross the same-host stream without being
// copied through the socket (docs/protocol.md, "1.2 Shared segments").
//
// The server makes every segment: a memory file (memfd) of a fixed size, sealed so that no
// process can shrink or grow it, which is what lets both sides touch it without a SIGBUS. It
// hands a connection the descriptor once (MAP), lends it segments to write blobs into (LEND), and
// names segments in place of a blob's bytes; the connection gives back those it read (RELEASE).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "zmanager/wire/protocol.hpp"

namespace zmanager::wire {

/// The kind of a stream message (header bytes 12–15). Kind 0 is an ordinary message; the others
/// are the transport's own, never seen above it, and carry a small msgpack array as their body.
enum class StreamKind : std::uint32_t {
  kMessage = 0,
  kMap = 1,      // server → client: [[segment_id, size], ...], one descriptor each (SCM_RIGHTS)
  kLend = 2,     // server → client: [segment_id, ...] lent to the client to write blobs into
  kLease = 3,    // client → server: [count, min_size] asks for segments (also: "I take them")
  kRelease = 4,  // client → server: [segment_id, ...] given back
  // Over ZeroMQ only (protocol version 6), where descriptors cannot travel with a message: the
  // client maps the server's segments through /proc once it proved it can.
  kOffer = 5,  // server → client: [pid, fd, size], a probe segment holding a token
  kProof = 6,  // client → server: [token], read from the probe segment
};
inline constexpr std::uint32_t kLastStreamKind = 4;
inline constexpr std::uint32_t kLastZmqKind = 6;

/// Bounds on the transport's own messages: their bodies, and the segments one of them names.
inline constexpr std::size_t kMaxControlBody = 16 * 1024;
inline constexpr std::size_t kMaxSegmentsPerControl = 1024;
inline constexpr std::size_t kMaxDescriptorsPerMap = 32;
/// A blob frame's length word with this bit set says the frame is in a segment: the segment id
/// and the offset (uint64 little-endian each) follow instead of the bytes.
inline constexpr std::uint64_t kInSegmentBit = std::uint64_t{1} << 63;
/// Blob frames this large go through a segment when the connection has one lent to it.
inline constexpr std::size_t kSegmentThreshold = 64 * 1024;
/// Segments are made in sizes that are powers of two, from this one.
inline constexpr std::size_t kSmallestSegment = 64 * 1024;

/// Where a blob frame's bytes already are: `length` bytes at `offset` in `segment`.
struct Placement {
  std::size_t frame;  // its index in the message (1: the first blob frame)
  std::uint64_t segment, offset, length;
};

/// A segment's memory mapped into this process, with its descriptor; unmapped and closed when
/// it goes.
class SegmentMapping {
 public:
  /// Makes a new sealed memory file of `size` bytes and maps it (the server). ConnectionError
  /// when the system refuses.
  static SegmentMapping create(std::size_t size);
  /// Maps a descriptor received from a server, after checking that it is a memory file of
  /// exactly `size` bytes sealed against shrinking (a ProtocolError if not). Takes `fd`.
  static SegmentMapping adopt(int fd, std::size_t size);
  /// Maps descriptor `fd` of process `pid` (through /proc: a ZeroMQ client on the server's
  /// host), with adopt()'s checks. ConnectionError when it cannot be opened (another host, pid
  /// namespace or user); ProtocolError when it is not a sealed memory file of `size` bytes.
  static SegmentMapping open_in(std::uint64_t pid, std::uint64_t fd, std::size_t size);

  SegmentMapping(SegmentMapping&& other) noexcept;
  SegmentMapping& operator=(SegmentMapping&& other) noexcept;
  SegmentMapping(const SegmentMapping&) = delete;
  SegmentMapping& operator=(const SegmentMapping&) = delete;
  ~SegmentMapping();

  std::byte* data() const { return data_; }
  std::size_t size() const { return size_; }
  int fd() const { return fd_; }

 private:
  SegmentMapping(int fd, std::byte* data, std::size_t size) : fd_(fd), data_(data), size_(size) {}
  int fd_ = -1;
  std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

/// The size of segment that holds `bytes`: a power of two, at least kSmallestSegment.
std::size_t segment_size_for(std::size_t bytes);

/// What one end of a stream does with the transport's own messages and with blob frames that
/// name a segment. Without one, a StreamReader treats both as a malformed stream.
class SegmentEndpoint {
 public:
  virtual ~SegmentEndpoint() = default;
  /// Whether descriptors passed with the bytes are taken (the client); else they are closed
  /// unread by the kernel (the server reads with read(2)).
  virtual bool takes_descriptors() const { return false; }
  /// Descriptors that arrived, in order; the endpoint owns them now.
  virtual void on_descriptors(std::span<const int> fds) { (void)fds; }
  /// A whole control message. A ProtocolError closes the connection.
  virtual void on_control(StreamKind kind, std::string_view body) = 0;
  /// The frame that stands for `length` bytes at `offset` in `segment`. An error's text makes
  /// the message refused (read past, the stream still in step).
  virtual zmq::message_t frame_in(std::uint64_t segment, std::uint64_t offset,
                                  std::uint64_t length) = 0;
};

/// The body of a control message naming segments ([id, ...]), and of MAP ([[id, size], ...]).
std::string encode_segment_ids(std::span<const std::uint64_t> ids);
/// As many bodies as `ids` need, each naming at most kMaxSegmentsPerControl of them.
std::vector<std::string> encode_segment_id_lists(std::span<const std::uint64_t> ids);
std::vector<std::uint64_t> decode_segment_ids(std::string_view body);
struct SegmentSize {
  std::uint64_t id;
  std::uint64_t size;
  std::int64_t fd = -1;  // over ZeroMQ: the descriptor's number in the server (MAP's third field)
};
std::string encode_segment_sizes(std::span<const SegmentSize> segments);
std::vector<SegmentSize> decode_segment_sizes(std::string_view body);
/// LEASE: [count, min_size].
struct LeaseRequest {
  std::uint64_t count;
  std::uint64_t min_size;
};
std::string encode_lease(LeaseRequest request);
LeaseRequest decode_lease(std::string_view body);

// Over ZeroMQ (docs/protocol.md, "1.3"), the transport's own messages are one frame: this byte,
// which msgpack never uses (so no body starts with it), the kind, then the msgpack body. Kind 0
// is no message of its own: it comes first in a message whose blob frames are in segments, and
// lists their places.
inline constexpr unsigned char kTransportMark = 0xc1;
/// The token in a probe segment, which a client proves it read.
inline constexpr std::size_t kProbeTokenBytes = 32;

bool is_transport_frame(const zmq::message_t& frame);
zmq::message_t transport_frame(StreamKind kind, std::string_view body);
struct TransportFrame {
  StreamKind kind;
  std::string_view body;  // in the frame
};
/// A ProtocolError when the kind is unknown or the body over kMaxControlBody.
TransportFrame read_transport_frame(const zmq::message_t& frame);

/// Kind 0's body: [[frame, segment_id, offset, length], ...].
std::string encode_placements(std::span<const Placement> placements);
/// Checks each frame index is a blob frame's of a message of `frames` frames, named once.
std::vector<Placement> decode_placements(std::string_view body, std::size_t frames);
/// OFFER: [pid, fd, size].
struct Offer {
  std::uint64_t pid, fd, size;
};
std::string encode_offer(Offer offer);
Offer decode_offer(std::string_view body);
/// PROOF: [token].
std::string encode_proof(std::span<const std::byte> token);
std::string decode_proof(std::string_view body);

}  // namespace zmanager::wire
