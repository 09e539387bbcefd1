// The server's shared segments (docs/protocol.md, "1.2 Shared segments"): memory files that
// same-host clients write large blobs into and read them from, so that a 1 MiB item crosses
// from producer to consumer with one copy on each side instead of two through each socket.
//
// A segment is free, lent to a connection to write into, or in use: held by the frames that
// stand for bytes in it (a call's argument, a queued item, a reply lent to a connection to read).
// The last such frame gives it back to the free list. Segments are made as they are first
// needed, up to the pool's capacity, and kept: reusing one costs no page faults, which on this
// project's machines cost more than copying the bytes (docs/performance.md, sixth day).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "zmanager/wire/segment.hpp"

namespace zmanager::server {

class SegmentPool : public std::enable_shared_from_this<SegmentPool> {
 public:
  struct Segment {
    std::uint64_t id;
    wire::SegmentMapping memory;
  };
  using SegmentPtr = std::shared_ptr<Segment>;

  /// At most `capacity` bytes of segments, each at most `largest` bytes.
  SegmentPool(std::size_t capacity, std::size_t largest) : capacity_(capacity), largest_(largest) {}
  /// Whether it may make segments at all (a capacity of 0 turns them off).
  bool lends() const { return capacity_ > 0; }
  /// Up to `count` free segments of at least `min_size` bytes, of the size segment_size_for()
  /// gives it: free ones first, then new ones while the pool is under its capacity. None when
  /// `min_size` is over the largest segment, or the system refuses memory (logged).
  std::vector<SegmentPtr> take(std::size_t count, std::size_t min_size);
  /// A segment taken and not used goes back to the free list.
  void give_back(SegmentPtr segment);

  /// A frame of `length` bytes at `offset` in `segment` (in range: the caller checked), which
  /// gives the segment back to the pool when ZeroMQ or the last Bytes sharing it frees it.
  zmq::message_t frame_of(SegmentPtr segment, std::uint64_t offset, std::uint64_t length);

  struct Place {
    std::uint64_t segment;
    std::uint64_t offset;
    std::size_t segment_size;
    int fd;  // the segment's descriptor, open while the pool lives
  };
  /// Where `size` bytes at `data` are, when they are in one of the pool's segments.
  std::optional<Place> find(const void* data, std::size_t size) const;

  struct Counts {
    std::uint64_t segments = 0;  // made and alive
    std::uint64_t free = 0;
    std::uint64_t bytes = 0;  // of all segments
  };
  Counts counts() const;

 private:
  const std::size_t capacity_;
  const std::size_t largest_;
  mutable std::mutex mu_;
  std::uint64_t next_id_ = 1;
  std::size_t bytes_ = 0;
  std::map<const std::byte*, SegmentPtr> by_address_;    // every segment
  std::multimap<std::size_t, SegmentPtr> free_by_size_;  // the free ones
};

/// What one client (a unix:// connection, a ZeroMQ peer) holds of a pool's segments, the same
/// for either transport: those lent to it to write blobs into, those it reads blobs from (held
/// by their frames until it gives them back), and those whose descriptor it was sent. Guarded
/// by its owner's lock.
class SegmentLedger {
 public:
  /// Segments one client may hold lent to write into.
  static constexpr std::size_t kMostLent = 8;

  /// Lends up to `count` segments of at least `min_size` bytes, within kMostLent; returns them
  /// as the client is to be told of them (their descriptors in `fd`).
  std::vector<wire::SegmentSize> lend(SegmentPool& pool, std::uint64_t count,
                                      std::uint64_t min_size);
  /// Those of `segments` whose descriptor the client was not sent yet, counted as sent now, in
  /// groups of at most wire::kMaxDescriptorsPerMap: a MAP each.
  std::vector<std::vector<wire::SegmentSize>> unsent(std::span<const wire::SegmentSize> segments);
  /// The segments `ids` the client gives back: read from, or lent and not used. Ids that are
  /// not the client's are ignored.
  void release(SegmentPool& pool, std::span<const std::uint64_t> ids);
  /// The `length` bytes the client wrote at `offset` in `segment`, as a frame: the segment is
  /// the pool's again, held by the frame. ValueError when the segment is not lent to the client
  /// to write into or the bytes are not inside it.
  zmq::message_t take_written(SegmentPool& pool, std::uint64_t segment, std::uint64_t offset,
                              std::uint64_t length);
  /// Lends the client each large blob of `frames` that is in a segment, in place of its bytes:
  /// the frame is kept until the client gives the segment back, and a moved-from one left in
  /// `frames`. Returns their places; `segments` gets the segments they are in.
  std::vector<wire::Placement> lend_to_read(SegmentPool& pool, wire::Frames& frames,
                                            std::vector<wire::SegmentSize>& segments);
  /// The client is gone: what it was lent goes back.
  void give_all_back(SegmentPool& pool);

 private:
  std::unordered_set<std::uint64_t> sent_;
  std::unordered_map<std::uint64_t, SegmentPool::SegmentPtr> lent_to_write_;
  std::unordered_multimap<std::uint64_t, zmq::message_t> lent_to_read_;
};

}  // namespace zmanager::server
