// How long a thread waiting for a reply polls for it before it sleeps.
//
// A sleeping thread pays a wake-up when its reply comes, and on virtual machines that is most
// of a same-host call: on a 2-vCPU VM a blocking Unix-socket ping-pong did 18k round trips/s,
// 58k when the client polled instead of sleeping (docs/performance.md). So the waiter polls
// first, for up to the budget (ConnectOptions::spin_before_sleep).
//
// But a polling thread holds a CPU. When there are more busy threads than CPUs, it takes the
// CPU the server needs to answer, and the reply comes later because of the polling: 8 polling
// clients on 2 vCPUs went from 122k calls/s to 36k. So polling that ends without the reply
// makes the next ones rarer: after n such waits in a row polling resumes only after 2^n waits
// (at most kMostSkipped), and each reply caught while polling halves the gap again. Used by the
// thread that holds the connection's socket role only.
#pragma once

#include <algorithm>
#include <chrono>

namespace zmanager::detail {

class ReplySpin {
 public:
  /// Waits skipped at most after polls that missed their reply: polling then costs at most
  /// 1/257 of the budget per wait where it never pays.
  static constexpr unsigned kMostSkipped = 256;

  explicit ReplySpin(std::chrono::microseconds budget) : budget_(budget) {}

  /// How long the next wait may poll: the budget, or zero (off, or backing off).
  std::chrono::microseconds next() {
    if (budget_.count() <= 0) return std::chrono::microseconds(0);
    if (skip_ > 0) {
      --skip_;
      return std::chrono::microseconds(0);
    }
    return budget_;
  }

  /// What came of a wait that polled: the reply arrived while polling, or it did not.
  void record(bool caught) {
    if (caught) {
      gap_ /= 2;
    } else {
      gap_ = std::min(kMostSkipped, std::max(1u, gap_ * 2));
      skip_ = gap_;
    }
  }

 private:
  const std::chrono::microseconds budget_;
  unsigned gap_ = 0;   // waits to skip after the next miss (halved per catch)
  unsigned skip_ = 0;  // waits still to skip
};

}  // namespace zmanager::detail
