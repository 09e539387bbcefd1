#include "zmq_segments.hpp"

#include <unistd.h>

#include <cstring>

#include "zmanager/errors.hpp"
#include "zmanager/wire/log.hpp"
#include "zmanager/wire/protocol.hpp"

namespace zmanager::server {
namespace {

bool same_token(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char differ = 0;
  for (std::size_t i = 0; i < a.size(); ++i) differ |= static_cast<unsigned char>(a[i] ^ b[i]);
  return differ == 0;
}

}  // namespace

bool ZmqSegments::make_probe() {
  if (probe_) return true;
  if (probe_failed_) return false;
  try {
    probe_.emplace(wire::SegmentMapping::create(wire::kSmallestSegment));
  } catch (const std::exception& e) {
    log::warn("no probe segment for same-host ZeroMQ clients: ", e.what());
    probe_failed_ = true;
    return false;
  }
  const wire::Nonce random = wire::random_nonce();
  static_assert(sizeof random == wire::kProbeTokenBytes);
  token_.assign(reinterpret_cast<const char*>(random.data()), random.size());
  std::memcpy(probe_->data(), token_.data(), token_.size());
  return true;
}

void ZmqSegments::introduce(Peer& peer, std::span<const wire::SegmentSize> segments,
                            std::vector<zmq::message_t>& out) {
  for (const auto& map : peer.ledger.unsent(segments))
    out.push_back(wire::transport_frame(wire::StreamKind::kMap, wire::encode_segment_sizes(map)));
}

std::vector<zmq::message_t> ZmqSegments::on_control(const std::string& routing,
                                                    wire::StreamKind kind, std::string_view body,
                                                    bool has_session) {
  std::vector<zmq::message_t> out;
  switch (kind) {
    case wire::StreamKind::kLease: {
      const auto request = wire::decode_lease(body);
      std::vector<std::uint64_t> ids;
      std::lock_guard lock(mu_);
      if (has_session && pool_->lends()) {
        Peer& peer = peers_[routing];
        if (!peer.takes) {
          // Not yet proved: offered the probe once; lent nothing until the PROOF.
          if (!peer.offered && make_probe()) {
            peer.offered = true;
            out.push_back(wire::transport_frame(
                wire::StreamKind::kOffer,
                wire::encode_offer({static_cast<std::uint64_t>(::getpid()),
                                    static_cast<std::uint64_t>(probe_->fd()), probe_->size()})));
          }
        } else {
          const auto lent = peer.ledger.lend(*pool_, request.count, request.min_size);
          for (const auto& segment : lent) ids.push_back(segment.id);
          introduce(peer, lent, out);
        }
      }
      // Always answered, with none when none is lent: the client asks again later.
      out.push_back(wire::transport_frame(wire::StreamKind::kLend, wire::encode_segment_ids(ids)));
      return out;
    }
    case wire::StreamKind::kProof: {
      const std::string token = wire::decode_proof(body);
      std::lock_guard lock(mu_);
      auto it = peers_.find(routing);
      if (!has_session || it == peers_.end() || !it->second.offered || it->second.takes) return out;
      if (!same_token(token, token_)) {
        log::warn("peer ", wire::to_hex(routing),
                  " sent a wrong probe token: it is sent no blobs in segments");
        return out;
      }
      it->second.takes = true;
      ++takers_;
      return out;
    }
    case wire::StreamKind::kRelease: {
      const auto ids = wire::decode_segment_ids(body);
      std::lock_guard lock(mu_);
      if (auto found = peers_.find(routing); found != peers_.end())
        found->second.ledger.release(*pool_, ids);
      return out;  // else nothing was lent to it
    }
    default:
      throw ProtocolError("a client sent a server's transport message (kind " +
                          std::to_string(static_cast<unsigned>(kind)) + ")");
  }
}

void ZmqSegments::take_placed(const std::string& routing, std::string_view placements,
                              wire::Frames& frames) {
  const auto places = wire::decode_placements(placements, frames.size());
  std::lock_guard lock(mu_);
  auto found = peers_.find(routing);
  for (const auto& place : places) {
    if (frames[place.frame].size() != 0) throw ValueError("a placed blob frame that is not empty");
    if (found == peers_.end()) throw ValueError("a blob frame in a segment, none being lent");
    frames[place.frame] =
        found->second.ledger.take_written(*pool_, place.segment, place.offset, place.length);
  }
}

ZmqSegments::Outgoing ZmqSegments::place_outgoing(const std::string& routing,
                                                  wire::Frames& frames) {
  Outgoing out;
  std::lock_guard lock(mu_);
  auto found = peers_.find(routing);
  if (found == peers_.end() || !found->second.takes) return out;
  Peer& peer = found->second;
  std::vector<wire::SegmentSize> placed_in;
  const auto placements = peer.ledger.lend_to_read(*pool_, frames, placed_in);
  if (placements.empty()) return out;
  introduce(peer, placed_in, out.maps);
  out.placement =
      wire::transport_frame(wire::StreamKind::kMessage, wire::encode_placements(placements));
  return out;
}

void ZmqSegments::forget(const std::string& routing) {
  std::lock_guard lock(mu_);
  auto it = peers_.find(routing);
  if (it == peers_.end()) return;
  if (it->second.takes) --takers_;
  it->second.ledger.give_all_back(*pool_);
  peers_.erase(it);
}

}  // namespace zmanager::server
