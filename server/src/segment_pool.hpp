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
  /// Segments one client (a unix:// connection, a ZeroMQ peer) may hold lent to write into.
  static constexpr std::size_t kMostLentToOneClient = 8;

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

}  // namespace zmanager::server
