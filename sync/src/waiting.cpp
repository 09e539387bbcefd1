#include "waiting.hpp"

#include <algorithm>
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

void SessionDebts::pay(std::uint64_t session, std::int64_t n) {
  auto pay_from = [&](std::map<std::uint64_t, std::int64_t>::iterator it) {
    std::int64_t paid = std::min(n, it->second);
    n -= paid;
    it->second -= paid;
    return it->second == 0 ? owed_.erase(it) : std::next(it);
  };
  if (auto own = owed_.find(session); own != owed_.end()) pay_from(own);
  for (auto it = owed_.begin(); n > 0 && it != owed_.end();) it = pay_from(it);
}

std::int64_t SessionDebts::settle(std::uint64_t session) {
  auto it = owed_.find(session);
  if (it == owed_.end()) return 0;
  std::int64_t owed = it->second;
  owed_.erase(it);
  return owed;
}

}  // namespace zmanager::sync
