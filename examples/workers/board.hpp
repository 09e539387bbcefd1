// What the coordinator and the workers agree on: the names on the shared board and the types of
// the objects stored under them.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

#include <zmanager/zmanager.hpp>

namespace workers {

/// A task is a number to square; an empty task (Python's None) tells a worker to stop taking.
using Task = std::optional<std::int64_t>;
using TaskQueue = zmanager::QueueProxy<Task>;
/// task -> its square (phase 1), worker id -> tasks done (phase 1), worker id -> its share's
/// sum (phase 2).
using IntDict = zmanager::DictProxy<std::int64_t, std::int64_t>;
using Counter = zmanager::ValueProxy<std::int64_t>;

/// The shared dict both programs reach by name; every other object is reached through it.
inline constexpr const char* kBoard = "board";

/// The longest any single wait may take (a task, the lock, the barrier, the join, an exit): a
/// lost peer then turns into an error instead of a hang.
inline constexpr std::chrono::seconds kWait{30};

/// Whether task `k` is in worker `id`'s share of phase 2. Interleaved, so that every share
/// includes one of the last tasks: the ones still in progress when the first sentinel is taken.
inline bool in_share(std::int64_t k, std::int64_t id, std::int64_t workers) {
  return k % workers == id;
}

}  // namespace workers
