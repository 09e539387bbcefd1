// The completion of one call (detail::CallState): settled once, by whichever of complete() and
// fail() comes first, and seen by threads that wait for it on another thread, however the
// settling thread and the waiting thread interleave.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>

#include "zmanager/detail/channel.hpp"
#include "zmanager/errors.hpp"

namespace {

using zmanager::detail::CallState;
using Clock = std::chrono::steady_clock;
constexpr auto kBound = std::chrono::seconds(10);

std::shared_ptr<CallState> make_state() {
  return std::make_shared<CallState>(std::weak_ptr<zmanager::detail::Channel>());
}

zmanager::wire::Payload payload_with_refs(std::vector<std::uint64_t> refs) {
  zmanager::wire::Payload p;
  p.refs = std::move(refs);
  return p;
}

TEST(CallState, TheFirstToSettleWinsAndTheOtherIsIgnored) {
  auto completed_first = make_state();
  completed_first->complete(payload_with_refs({}), 3);
  completed_first->fail(std::make_exception_ptr(std::runtime_error("late")));
  ASSERT_TRUE(completed_first->done());
  EXPECT_NO_THROW(completed_first->take());
  EXPECT_EQ(completed_first->session(), 3u);

  auto failed_first = make_state();
  failed_first->fail(std::make_exception_ptr(std::runtime_error("first")));
  failed_first->complete(payload_with_refs({}), 3);
  EXPECT_THROW(failed_first->take(), std::runtime_error);
  EXPECT_EQ(failed_first->session(), 0u);
}

TEST(CallState, TheResultIsTakenOnce) {
  auto state = make_state();
  state->complete(payload_with_refs({}), 1);
  EXPECT_NO_THROW(state->take());
  EXPECT_THROW(state->take(), zmanager::Error);
}

TEST(CallState, AWaitWithADeadlineEndsWhenNothingSettlesTheCall) {
  auto state = make_state();
  EXPECT_FALSE(state->wait_here(Clock::now() + std::chrono::milliseconds(20)));
  EXPECT_FALSE(state->done());
}

// Many rounds of one thread settling while another waits, each started together, so that the
// settling lands before, during and after the waiter's check: a lost wake-up shows as a wait
// that runs to its deadline.
TEST(CallState, AWaiterOnAnotherThreadIsWokenByWhicheverSettlesTheCall) {
  constexpr int kRounds = 2000;
  int woken = 0, completed = 0, failed = 0;
  for (int round = 0; round < kRounds; ++round) {
    auto state = make_state();
    std::atomic<bool> go{false};
    std::thread completer([&] {
      while (!go.load()) {
      }
      state->complete(payload_with_refs({}), 1);
    });
    std::thread failer([&] {
      while (!go.load()) {
      }
      state->fail(std::make_exception_ptr(std::runtime_error("failed")));
    });
    go.store(true);
    const auto deadline = Clock::now() + kBound;
    const bool settled = state->wait_here(deadline);
    const bool woken_before_deadline = Clock::now() < deadline;
    completer.join();
    failer.join();
    ASSERT_TRUE(settled);
    // A lost wake-up ends only at the deadline (where the call is found settled all the same).
    ASSERT_TRUE(woken_before_deadline) << "round " << round << ": the wake-up was lost";
    ++woken;
    try {
      state->take();
      ++completed;
    } catch (const std::runtime_error&) {
      ++failed;
    }
  }
  EXPECT_EQ(woken, kRounds);
  EXPECT_EQ(completed + failed, kRounds);  // each round settled exactly once
}

}  // namespace
