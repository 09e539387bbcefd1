// What the frame producer and consumer agree on: a ring of frame-sized slots in one shared-memory
// segment, and two managed queues of slot numbers that hand the slots back and forth. The frames
// never go through the server; only their slot numbers do (8 bytes a frame).
#pragma once

#include <chrono>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>

#include <zmanager/zmanager.hpp>

#include "streaming_copy.hpp"

namespace frames {

/// A 4K RGB frame: 3840 × 2160 × 3 bytes, about 24 MiB.
inline constexpr std::size_t kFrameBytes = std::size_t{3840} * 2160 * 3;

/// Slot numbers: `free` holds the slots the producer may fill, `filled` the ones the consumer
/// may read, in frame order. kEnd on `filled` says the producer is done.
using SlotQueue = zmanager::QueueProxy<std::int64_t>;
inline constexpr std::int64_t kEnd = -1;

/// The longest any one wait may take: a lost peer turns into an error, not a hang.
inline constexpr std::chrono::seconds kWait{30};

/// The slots, `frame_bytes` each, of one shared-memory segment.
class FrameRing {
 public:
  /// A new segment (under a fresh name) of `slots` frames.
  FrameRing(std::size_t frame_bytes, std::size_t slots)
      : shm_(std::nullopt, true, static_cast<std::int64_t>(frame_bytes * slots)),
        frame_bytes_(frame_bytes) {}
  /// The segment another process made.
  FrameRing(const std::string& name, std::size_t frame_bytes)
      : shm_(name), frame_bytes_(frame_bytes) {
    if (frame_bytes_ == 0 || shm_.size() % frame_bytes_ != 0)
      throw zmanager::ValueError("segment " + name + " is not a whole number of frames");
  }

  const std::string& name() const { return shm_.name(); }
  std::size_t slots() const { return shm_.size() / frame_bytes_; }
  std::span<std::byte> slot(std::int64_t i) const {
    if (i < 0 || static_cast<std::size_t>(i) >= slots())
      throw zmanager::IndexError("no slot " + std::to_string(i));
    return shm_.buf().subspan(static_cast<std::size_t>(i) * frame_bytes_, frame_bytes_);
  }
  /// Removes the segment's name (the creator, once both sides are done or on failure).
  void unlink() { shm_.unlink(); }

 private:
  zmanager::SharedMemory shm_;
  std::size_t frame_bytes_;
};

/// Writes the frame number into a frame's first and last 8 bytes: a reader that finds both
/// equal to the number it expects knows the slot holds that whole frame.
inline void stamp(std::span<std::byte> frame, std::int64_t number) {
  std::memcpy(frame.data(), &number, sizeof number);
  std::memcpy(frame.data() + frame.size() - sizeof number, &number, sizeof number);
}

inline std::optional<std::int64_t> read_stamp(std::span<const std::byte> frame) {
  std::int64_t head, tail;
  std::memcpy(&head, frame.data(), sizeof head);
  std::memcpy(&tail, frame.data() + frame.size() - sizeof tail, sizeof tail);
  if (head != tail) return std::nullopt;
  return head;
}

/// The sum of a frame's 8-byte words between the two stamps: what a consumer computes to read
/// every byte of a frame (a stand-in for real work on the picture) and check it arrived whole.
inline std::uint64_t picture_sum(std::span<const std::byte> frame) {
  // Four running sums, so that the loads of one step do not wait for the adds of the last.
  std::uint64_t sums[4] = {};
  const std::byte* p = frame.data() + 8;
  const std::byte* end = frame.data() + frame.size() - 8;
  for (; p + 32 <= end; p += 32) {
    for (int k = 0; k < 4; ++k) {
      std::uint64_t word;
      std::memcpy(&word, p + 8 * k, sizeof word);
      sums[k] += word;
    }
  }
  for (; p + 8 <= end; p += 8) {
    std::uint64_t word;
    std::memcpy(&word, p, sizeof word);
    sums[0] += word;
  }
  return sums[0] + sums[1] + sums[2] + sums[3];
}

/// Waits for `future` within kWait and returns its result.
template <class T>
T await(zmanager::Future<T>& future) {
  if (!future.wait_for(kWait))
    throw zmanager::TimeoutError("the other side did not answer in time");
  return future.get();
}

/// One side of the hand-off: takes slots from one queue and gives them to the other, with its
/// calls pipelined so that the queues' round trips overlap the copying or reading. The next
/// slot is asked for before the current one is used, and a slot is given without waiting for
/// the put's reply (which is checked at the next one).
class SlotHandOff {
 public:
  SlotHandOff(SlotQueue take_from, SlotQueue give_to)
      : take_from_(std::move(take_from)), give_to_(std::move(give_to)) {}

  /// The next slot (or kEnd), with the one after it already asked for unless this is kEnd.
  std::int64_t take() {
    if (!next_.valid()) next_ = take_from_.get_async(true, kWait);
    std::int64_t s = await(next_);
    if (s != kEnd) next_ = take_from_.get_async(true, kWait);
    return s;
  }

  void give(std::int64_t s) {
    settle();
    last_give_ = give_to_.put_async(s);
  }

  /// Waits for the last give's reply.
  void settle() {
    if (last_give_.valid()) await(last_give_);
  }

 private:
  SlotQueue take_from_, give_to_;
  zmanager::Future<std::int64_t> next_;
  zmanager::Future<void> last_give_;
};

/// The producer's side: takes free slots, gives filled ones.
class FrameProducer {
 public:
  FrameProducer(const FrameRing& ring, SlotQueue free, SlotQueue filled)
      : ring_(ring), slots_(std::move(free), std::move(filled)) {}

  /// Copies `frame` into the next free slot, stamped with `number`, and hands the slot over.
  /// (A producer that draws its frames can draw them in the slot itself.)
  void send(std::span<std::byte> frame, std::int64_t number) {
    std::int64_t s = slots_.take();
    stamp(frame, number);
    auto slot = ring_.slot(s);
    streaming_copy(slot.data(), frame.data(), frame.size());
    slots_.give(s);
  }

  /// Tells the consumer there are no more frames.
  void finish() {
    slots_.give(kEnd);
    slots_.settle();
  }

 private:
  const FrameRing& ring_;
  SlotHandOff slots_;
};

/// The consumer's side: takes filled slots, gives free ones.
class FrameConsumer {
 public:
  FrameConsumer(const FrameRing& ring, SlotQueue free, SlotQueue filled)
      : ring_(ring), slots_(std::move(filled), std::move(free)) {}

  /// Reads the next frame where it lies (no copy out), checking its stamps and `expected_sum`,
  /// and gives the slot back. Returns the frame's number, or nullopt at the end.
  std::optional<std::int64_t> receive(std::uint64_t expected_sum) {
    std::int64_t s = slots_.take();
    if (s == kEnd) {
      slots_.settle();
      return std::nullopt;
    }
    auto slot = ring_.slot(s);
    auto number = read_stamp(slot);
    bool whole = number && picture_sum(slot) == expected_sum;
    slots_.give(s);
    if (!whole) throw zmanager::RuntimeError("slot " + std::to_string(s) + " held a torn frame");
    return number;
  }

 private:
  const FrameRing& ring_;
  SlotHandOff slots_;
};

}  // namespace frames
