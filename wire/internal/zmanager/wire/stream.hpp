// Messages on a byte stream (internal): the same-host transport, where a client on the server's
// host talks to it over a Unix socket served by the server's own poll loop instead of through
// ZeroMQ's I/O threads (docs/protocol.md, "1.1 Same-host stream").
//
// A message on the stream: a 16-byte header (uint64 little-endian length of frame 0, the body;
// uint32 little-endian number of blob frames; uint32 zero), the body, then each blob frame as a
// uint64 little-endian length and its bytes. The frames are those of the ZeroMQ message the
// same call would be, so everything above the transport is shared.
#pragma once

#include <sys/types.h>
#include <sys/un.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "zmanager/wire/protocol.hpp"
#include "zmanager/wire/segment.hpp"

namespace zmanager::wire {

inline constexpr std::string_view kUnixScheme = "unix://";

/// True for "unix:///path" and "unix://@name" (Linux's abstract namespace).
bool is_unix_address(std::string_view address);
/// The socket address of a unix:// address; ValueError when it is malformed or too long.
struct UnixAddress {
  sockaddr_un addr{};
  socklen_t length = 0;
  bool abstract = false;
  std::string path;  // the file system path (empty when abstract)
};
UnixAddress parse_unix_address(std::string_view address);

/// What a StreamReader read: whole messages, and the messages it refused for a limit (read
/// past without keeping them, so that the stream stays in step and the caller can be told).
struct StreamInput {
  std::vector<Frames> messages;
  struct Refused {
    std::uint64_t request_id;  // of a CALL (peek_request_id), else 0
    std::string why;
    bool over_limit = true;  // else it named a segment it could not (malformed)
  };
  std::vector<Refused> refused;
  std::size_t count() const { return messages.size() + refused.size(); }
};

/// Reads messages from a non-blocking stream socket as they arrive, a piece at a time. Checks
/// each header against the Limits before allocating anything for it. A message over a limit
/// is read past and reported as refused; a header that is not one is a ProtocolError (the
/// stream cannot be read on in step after it: the caller closes the connection). Large frames
/// are read straight into their frame.
///
/// With a SegmentEndpoint, the transport's own messages go to it as they are read, and a blob
/// frame that names a segment becomes the frame the endpoint makes for it; without one, both
/// are a malformed stream.
class StreamReader {
 public:
  explicit StreamReader(const Limits& limits, SegmentEndpoint* segments = nullptr)
      : limits_(limits), segments_(segments) {}
  /// From the next message on (nullptr: none).
  void use_segments(SegmentEndpoint* segments) { segments_ = segments; }

  enum class Status { kOpen, kClosed };
  /// Reads what the socket has, until it would block or `max_messages` messages were added to
  /// `in`. kClosed at the end of the stream or on an error (a reset): what was read of a
  /// message cut short is dropped.
  Status read_from(int fd, StreamInput& in, std::size_t max_messages);
  /// Parses `data` as if read from a socket: for tests and the fuzzer.
  void feed(const char* data, std::size_t size, StreamInput& in);

 private:
  enum class Part { kHeader, kFrame, kBlobLength, kSegmentPlace };  // what the next bytes are
  void parse(StreamInput& in);
  /// Why a message with this header is refused, or empty.
  std::string over_limit(std::uint64_t body, std::uint32_t blobs) const;
  void begin_frame(std::uint64_t size);
  void end_frame(StreamInput& in);
  /// The next blob frame, or the end of the message.
  void next_blob_or_end(StreamInput& in);
  /// Drops what was kept of the message being read, keeping the start of its body to peek at.
  void refuse(std::string why, bool over_limit);
  /// One read(2), or recvmsg(2) when the endpoint takes descriptors.
  ssize_t receive(int fd, char* into, std::size_t size);
  /// Bytes `data` of the current frame: kept, or only peeked at when the message is refused.
  void take(const char* data, std::size_t size);
  /// Moves the bytes not yet parsed to the front of the buffer.
  void compact();

  const Limits& limits_;
  SegmentEndpoint* segments_;
  std::vector<char> buffer_ = std::vector<char>(64 * 1024);
  std::size_t begin_ = 0, end_ = 0;  // the bytes of buffer_ read and not yet parsed
  Part part_ = Part::kHeader;
  Frames frames_;  // of the message being read
  std::uint64_t frame_size_ = 0;
  std::uint64_t filled_ = 0;  // of the frame being read
  std::uint32_t blobs_left_ = 0;
  std::uint64_t message_bytes_ = 0;
  std::string refusing_;  // why the message being read is refused (empty: it is kept)
  bool refusing_over_limit_ = true;
  StreamKind kind_ = StreamKind::kMessage;  // of the message being read
  std::uint64_t segment_frame_size_ = 0;    // of the blob frame whose place is being read
  std::array<unsigned char, 16> peek_{};    // the start of a refused message's body
  std::size_t peek_size_ = 0;
};

/// Queues messages for a non-blocking stream socket and writes them with as few system calls
/// as it can (one sendmsg carries many small messages).
class StreamWriter {
 public:
  using Placement = wire::Placement;
  /// Queues a message. The frames are moved in; a caller that keeps them passes copies
  /// (zmq::message_t::copy shares a large frame's buffer rather than copying it). A placed
  /// frame is written as its segment's place, not its bytes (its frame is not read).
  void push(Frames frames, std::span<const Placement> placements = {});
  /// Queues one of the transport's own messages, with descriptors to pass with its first byte
  /// (they must stay open until it is written; the writer does not close them).
  void push_control(StreamKind kind, std::string_view body, std::vector<int> fds = {});
  enum class Status { kDone, kPending, kBroken };
  /// Writes what the socket takes. kPending: the rest waits for the socket to be writable;
  /// kBroken: the peer is gone (never SIGPIPE).
  Status write_to(int fd);
  bool empty() const { return queue_.empty(); }
  /// Forgets what was queued; `keep_whole` keeps the messages not yet begun, so that they can
  /// go on a new connection (a message half written is lost with its connection, and so are
  /// those that name its segments and the transport's own).
  void drop(bool keep_whole);

 private:
  struct Queued {
    std::array<unsigned char, 16> header;
    struct BlobHead {
      std::array<unsigned char, 24> bytes;  // the length word, then a segment's place
      bool placed = false;                  // the 16 bytes of place follow, not the frame
    };
    std::vector<BlobHead> blob_heads;
    Frames frames;
    std::vector<int> fds;     // passed with the first byte
    std::size_t written = 0;  // bytes of this message already sent
    std::size_t total = 0;
  };
  std::deque<Queued> queue_;
};

}  // namespace zmanager::wire
