#include "segment_pool.hpp"

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

}  // namespace zmanager::server
