// A thread waiting for a reply over unix:// polls for it before it sleeps (ReplySpin): how long
// it polls and how polling backs off when it does not pay, and calls over a real Unix socket
// with polling off, on, and longer than any reply takes.
#include <gtest/gtest.h>

#include <future>
#include <thread>
#include <vector>

#include "reply_spin.hpp"
#include "server_process.hpp"
#include "test_types.hpp"

using namespace std::chrono_literals;
using zmanager::detail::ReplySpin;

namespace {

/// How many of the next `waits` waits poll.
int polls_among(ReplySpin& spin, int waits, bool caught) {
  int polled = 0;
  for (int i = 0; i < waits; ++i) {
    if (spin.next() == 0us) continue;
    ++polled;
    spin.record(caught);
  }
  return polled;
}

TEST(ReplySpin, ABudgetOfZeroNeverPolls) {
  ReplySpin spin(0us);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(spin.next(), 0us);
}

TEST(ReplySpin, EveryWaitPollsForTheBudgetWhilePollingCatchesTheReply) {
  ReplySpin spin(50us);
  for (int i = 0; i < 100; ++i) {
    ASSERT_EQ(spin.next(), 50us) << "wait " << i;
    spin.record(true);
  }
}

TEST(ReplySpin, MissesInARowSkipTwiceAsManyWaitsEachUpToTheMost) {
  ReplySpin spin(50us);
  // Miss n (from 1) skips 2^(n-1) waits: polls at waits 0, 2, 5, 10, 19, ...
  std::vector<int> polled_at;
  for (int wait = 0; wait < 40; ++wait) {
    if (spin.next() == 0us) continue;
    polled_at.push_back(wait);
    spin.record(false);
  }
  EXPECT_EQ(polled_at, (std::vector<int>{0, 2, 5, 10, 19, 36}));
  // Once at the most, one wait in kMostSkipped + 1 polls.
  for (int i = 0; i < 20; ++i) polls_among(spin, 1000, false);
  EXPECT_EQ(polls_among(spin, 257 * 4, false), 4);
}

TEST(ReplySpin, CatchesHalveTheGapUntilEveryWaitPollsAgain) {
  ReplySpin spin(50us);
  for (int i = 0; i < 20; ++i) polls_among(spin, 1000, false);  // backed off to the most
  // The next poll that catches its reply halves the gap (256 -> 128), and so on down to 0.
  int waits = 0;
  int catches = 0;
  while (catches < 10 && waits < 10'000) {
    ++waits;
    if (spin.next() == 0us) continue;
    spin.record(true);
    ++catches;
  }
  ASSERT_EQ(catches, 10);
  for (int i = 0; i < 50; ++i) ASSERT_EQ(spin.next(), 50us) << "wait " << i << " after catches";
  // A miss after that skips one wait only.
  spin.record(false);
  EXPECT_EQ(spin.next(), 0us);
  EXPECT_EQ(spin.next(), 50us);
}

class SpinOverUnix : public ::testing::TestWithParam<std::chrono::microseconds> {};

TEST_P(SpinOverUnix, CallsFromThreadsAndCallsSlowerThanThePollReturnTheirResults) {
  zmanager::BaseManager m({.address = "tcp://127.0.0.1:0",
                           .local_address = test::abstract_unix_address("spin"),
                           .spin_before_sleep = GetParam()});
  test::register_all(m);
  m.start();  // this process's connection is the Unix one
  auto maths = m.create<Maths>("Maths");
  for (int i = 0; i < 2000; ++i) ASSERT_EQ(maths.add(i, 1), i + 1);
  // A reply that takes longer than any poll: the waiter goes on to sleep and is woken by it.
  auto sleeper = m.create<Sleeper>("Sleeper");
  EXPECT_EQ(sleeper.nap(30), 30);
  // Threads take turns at the socket; whichever holds it polls for all of them.
  std::vector<std::future<long>> sums;
  for (int t = 0; t < 4; ++t)
    sums.push_back(std::async(std::launch::async, [&, t] {
      long sum = 0;
      for (int i = 0; i < 500; ++i) sum += maths.add(t, i);
      return sum;
    }));
  for (int t = 0; t < 4; ++t) {
    ASSERT_EQ(sums[static_cast<std::size_t>(t)].wait_for(60s), std::future_status::ready);
    EXPECT_EQ(sums[static_cast<std::size_t>(t)].get(), 500L * t + 499L * 500 / 2);
  }
}

INSTANTIATE_TEST_SUITE_P(Budgets, SpinOverUnix, ::testing::Values(0us, 50us, 100ms));

}  // namespace
