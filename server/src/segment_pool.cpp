#include "segment_pool.hpp"

#include <algorithm>
#include <cstdint>

#include "zmanager/errors.hpp"
#include "zmanager/wire/log.hpp"

namespace zmanager::server {
namespace {

/// What a frame standing for bytes in a segment holds: the segment, and the way back to its
/// pool (which may be gone by the time ZeroMQ frees the frame: the segment then just goes).
struct FrameHold {
  std::weak_ptr<SegmentPool> pool;
  SegmentPool::SegmentPtr segment;
};

void free_frame(void* /*data*/, void* hint) {
  std::unique_ptr<FrameHold> hold(static_cast<FrameHold*>(hint));
  if (auto pool = hold->pool.lock()) pool->give_back(std::move(hold->segment));
}

}  // namespace

std::vector<SegmentPool::SegmentPtr> SegmentPool::take(std::size_t count, std::size_t min_size) {
  std::vector<SegmentPtr> out;
  // The first test also keeps segment_size_for() from rounding a huge size past the top.
  if (count == 0 || min_size > largest_) return out;
  const std::size_t size = wire::segment_size_for(min_size);
  if (size > largest_) return out;
  std::size_t to_make = 0;
  std::uint64_t first_id = 0;
  {
    std::lock_guard lock(mu_);
    for (auto it = free_by_size_.find(size);
         it != free_by_size_.end() && it->first == size && out.size() < count;) {
      out.push_back(std::move(it->second));
      it = free_by_size_.erase(it);
    }
    // New segments are counted now and made below, without the mutex: making one is three
    // system calls and page-table work (memfd_create, ftruncate, mmap), and give_back(), which
    // ZeroMQ's I/O thread runs when it frees a frame, would wait for them.
    while (out.size() + to_make < count && bytes_ + size <= capacity_) {
      bytes_ += size;
      ++to_make;
    }
    first_id = next_id_;
    next_id_ += to_make;
  }
  std::vector<SegmentPtr> made;
  for (std::size_t i = 0; i < to_make; ++i) {
    try {
      made.push_back(
          std::make_shared<Segment>(Segment{first_id + i, wire::SegmentMapping::create(size)}));
    } catch (const Error& e) {
      log::warn("no new shared segment: ", e.what());
      break;
    }
  }
  if (to_make == 0) return out;
  std::lock_guard lock(mu_);
  bytes_ -= (to_make - made.size()) * size;  // those the system refused
  for (auto& segment : made) {
    by_address_.emplace(segment->memory.data(), segment);
    out.push_back(std::move(segment));
  }
  return out;
}

void SegmentPool::give_back(SegmentPtr segment) {
  std::lock_guard lock(mu_);
  free_by_size_.emplace(segment->memory.size(), std::move(segment));
}

zmq::message_t SegmentPool::frame_of(SegmentPtr segment, std::uint64_t offset,
                                     std::uint64_t length) {
  std::byte* data = segment->memory.data() + offset;
  auto hold = std::make_unique<FrameHold>(FrameHold{weak_from_this(), std::move(segment)});
  zmq::message_t frame(data, static_cast<std::size_t>(length), &free_frame, hold.get());
  hold.release();  // the frame owns it now
  return frame;
}

std::optional<SegmentPool::Place> SegmentPool::find(const void* data, std::size_t size) const {
  const auto* at = static_cast<const std::byte*>(data);
  std::lock_guard lock(mu_);
  auto it = by_address_.upper_bound(at);
  if (it == by_address_.begin()) return std::nullopt;
  --it;
  const auto& memory = it->second->memory;
  // Addresses as numbers: `at` may be in no segment at all.
  const std::size_t offset =
      reinterpret_cast<std::uintptr_t>(at) - reinterpret_cast<std::uintptr_t>(memory.data());
  if (offset >= memory.size() || size > memory.size() - offset) return std::nullopt;
  return Place{it->second->id, offset, memory.size(), memory.fd()};
}

SegmentPool::Counts SegmentPool::counts() const {
  std::lock_guard lock(mu_);
  return {by_address_.size(), free_by_size_.size(), bytes_};
}

std::vector<wire::SegmentSize> SegmentLedger::lend(SegmentPool& pool, std::uint64_t count,
                                                   std::uint64_t min_size) {
  const std::size_t room = kMostLent - lent_to_write_.size();
  auto lent = pool.take(static_cast<std::size_t>(std::min<std::uint64_t>(count, room)),
                        static_cast<std::size_t>(std::min<std::uint64_t>(min_size, SIZE_MAX)));
  std::vector<wire::SegmentSize> sizes;
  for (auto& segment : lent) {
    sizes.push_back({segment->id, segment->memory.size(), segment->memory.fd()});
    lent_to_write_.emplace(segment->id, std::move(segment));
  }
  return sizes;
}

std::vector<std::vector<wire::SegmentSize>> SegmentLedger::unsent(
    std::span<const wire::SegmentSize> segments) {
  std::vector<std::vector<wire::SegmentSize>> maps;
  for (const auto& segment : segments) {
    if (!sent_.insert(segment.id).second) continue;
    if (maps.empty() || maps.back().size() == wire::kMaxDescriptorsPerMap) maps.emplace_back();
    maps.back().push_back(segment);
  }
  return maps;
}

void SegmentLedger::release(SegmentPool& pool, std::span<const std::uint64_t> ids) {
  for (std::uint64_t id : ids) {
    if (auto it = lent_to_read_.find(id); it != lent_to_read_.end()) {
      lent_to_read_.erase(it);  // its frame gives the segment back
    } else if (auto lent = lent_to_write_.find(id); lent != lent_to_write_.end()) {
      pool.give_back(std::move(lent->second));
      lent_to_write_.erase(lent);
    }
  }
}

zmq::message_t SegmentLedger::take_written(SegmentPool& pool, std::uint64_t segment,
                                           std::uint64_t offset, std::uint64_t length) {
  auto it = lent_to_write_.find(segment);
  if (it == lent_to_write_.end())
    throw ValueError("a blob frame in segment " + std::to_string(segment) +
                     ", which is not lent to this client to write into");
  const std::uint64_t size = it->second->memory.size();
  if (offset > size || length > size - offset)
    throw ValueError("a blob frame of " + std::to_string(length) + " bytes at offset " +
                     std::to_string(offset) + " of a segment of " + std::to_string(size));
  auto held = std::move(it->second);
  lent_to_write_.erase(it);
  return pool.frame_of(std::move(held), offset, length);
}

std::vector<wire::Placement> SegmentLedger::lend_to_read(SegmentPool& pool, wire::Frames& frames,
                                                         std::vector<wire::SegmentSize>& segments) {
  std::vector<wire::Placement> placements;
  for (std::size_t i = 1; i < frames.size(); ++i) {
    if (frames[i].size() < wire::kSegmentThreshold) continue;
    const auto place = pool.find(frames[i].data(), frames[i].size());
    if (!place) continue;
    segments.push_back({place->segment, place->segment_size, place->fd});
    placements.push_back({i, place->segment, place->offset, frames[i].size()});
    lent_to_read_.emplace(place->segment, std::move(frames[i]));
  }
  return placements;
}

void SegmentLedger::give_all_back(SegmentPool& pool) {
  for (auto& [id, segment] : lent_to_write_) pool.give_back(std::move(segment));
  lent_to_write_.clear();
  lent_to_read_.clear();  // and with them the frames the client was reading
}

}  // namespace zmanager::server
