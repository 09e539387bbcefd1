#include "waiting.hpp"

#include <cmath>

#include "zmanager/errors.hpp"

namespace zmanager::sync {

namespace {
// Longer than any real wait; keeps time_point arithmetic far from overflow.
constexpr double kForeverSeconds = 1e9;

WaitLimit from_seconds(double seconds) {
  if (std::isnan(seconds)) throw ValueError("timeout must be a number, not NaN");
  if (seconds >= kForeverSeconds) return std::nullopt;
  if (seconds <= 0) return Clock::duration::zero();
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}
}  // namespace

WaitLimit wait_limit(std::optional<double> seconds) {
  if (!seconds) return std::nullopt;
  return from_seconds(*seconds);
}

WaitLimit queue_wait_limit(bool block, std::optional<double> seconds) {
  if (!block) return Clock::duration::zero();
  if (!seconds) return std::nullopt;
  if (*seconds < 0) throw ValueError("'timeout' must be a non-negative number");
  return from_seconds(*seconds);
}

WaitLimit lock_wait_limit(bool blocking, std::optional<double> seconds) {
  bool forever = !seconds || *seconds == -1;
  if (!blocking) {
    if (!forever) throw ValueError("can't specify a timeout for a non-blocking call");
    return Clock::duration::zero();
  }
  if (forever) return std::nullopt;
  if (*seconds < 0) throw ValueError("timeout value must be a non-negative number");
  return from_seconds(*seconds);
}

WaitLimit semaphore_wait_limit(bool blocking, std::optional<double> seconds) {
  if (!blocking) {
    if (seconds) throw ValueError("can't specify timeout for non-blocking acquire");
    return Clock::duration::zero();
  }
  return wait_limit(seconds);
}

}  // namespace zmanager::sync
