// Shared segments for ZeroMQ clients on the server's host (docs/protocol.md, "1.3"). A ZeroMQ
// message cannot carry a descriptor, so a client that asks for segments is first offered a probe
// segment: it opens the server's descriptor through /proc and sends back the token it read
// there, which only a process on this host, allowed to open the server's files, can. From then
// on it is lent segments and sent blobs in them as a unix:// client is, and a 1 MiB item crosses
// without passing through TCP (and both sides' ZeroMQ I/O threads) twice per hop.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "segment_pool.hpp"
#include "zmanager/wire/segment.hpp"

namespace zmanager::server {

class ZmqSegments {
 public:
  /// Segments come from `pool`, shared with the same-host stream; a pool of no capacity lends
  /// none and offers no probe.
  explicit ZmqSegments(std::shared_ptr<SegmentPool> pool) : pool_(std::move(pool)) {}

  /// One of the transport's own messages (LEASE, PROOF, RELEASE) from a peer; `has_session`
  /// says whether it has one, without which it is lent nothing. Returns the messages (one frame
  /// each) to send back. ProtocolError when it is malformed or a server's message.
  std::vector<zmq::message_t> on_control(const std::string& routing, wire::StreamKind kind,
                                         std::string_view body, bool has_session);

  /// Replaces the placed frames of a message (its placement frame already taken off) with the
  /// bytes they name, which must be in segments lent to the peer to write into: the segments
  /// are the server's again, held by the frames. ValueError (the message is refused) when a
  /// placement breaks that rule or its frame is not empty; ProtocolError when the placement
  /// frame is malformed.
  void take_placed(const std::string& routing, std::string_view placements, wire::Frames& frames);

  /// What goes before a message to a peer that takes segments: the MAPs of segments it has not
  /// been sent yet (each a message of its own), and the placement frame (the message's first).
  struct Outgoing {
    std::vector<zmq::message_t> maps;
    std::optional<zmq::message_t> placement;
  };
  /// Lends the peer each large blob of `frames` that is in a segment, in place of its bytes:
  /// the frame is kept until the peer gives the segment back, and an empty one left in
  /// `frames`. Nothing when the peer does not take segments or no blob is in one.
  Outgoing place_outgoing(const std::string& routing, wire::Frames& frames);

  /// The peer's session ended: what it was lent goes back to the pool.
  void forget(const std::string& routing);

  /// Whether any peer takes segments: only then has place_outgoing() anything to do.
  bool any_takers() const { return takers_.load(std::memory_order_relaxed) > 0; }

 private:
  struct Peer {
    bool offered = false;  // was sent OFFER
    bool takes = false;    // proved it maps the server's segments
    SegmentLedger ledger;
  };
  /// With mu_ held: the probe segment and its token, made at the first OFFER. False when the
  /// system refused it (logged): then no peer is offered segments.
  bool make_probe();
  /// With mu_ held: MAP messages for those of `segments` the peer has not been sent.
  static void introduce(Peer& peer, std::span<const wire::SegmentSize> segments,
                        std::vector<zmq::message_t>& out);

  const std::shared_ptr<SegmentPool> pool_;
  std::mutex mu_;
  std::optional<wire::SegmentMapping> probe_;
  bool probe_failed_ = false;
  std::string token_;
  std::unordered_map<std::string, Peer> peers_;  // those with a session that sent a LEASE
  std::atomic<std::size_t> takers_{0};
};

}  // namespace zmanager::server
