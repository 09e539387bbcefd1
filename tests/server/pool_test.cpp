// The server's threads take turns polling the socket and run the calls they read
// (server/src/executor.cpp, WorkerPool::serve): whichever thread runs a slow call, another one
// keeps reading, even with the smallest pool.
#include <gtest/gtest.h>

#include <optional>
#include <thread>
#include <vector>

#include "test_types.hpp"

using namespace std::chrono_literals;

namespace {

TEST(Pool, WithOneWorkerASlowCallDoesNotStallCallsOnOtherObjects) {
  zmanager::BaseManager manager(zmanager::ManagerOptions{.threads = 1});
  test::register_all(manager);
  manager.start();
  auto sleeper = manager.create<Sleeper>("Sleeper");
  auto maths = manager.create<Maths>("Maths");
  auto nap = sleeper.async().nap(3000);
  int answered = 0;
  for (int i = 0; i < 20; ++i) answered += maths.add(i, 1) == i + 1;
  EXPECT_EQ(answered, 20);
  EXPECT_FALSE(nap.ready()) << "calls on another object waited for the slow one";
  ASSERT_TRUE(nap.wait_for(30s));
  EXPECT_EQ(nap.get(), 3000);
}

TEST(Pool, WithOneWorkerTwoSlowCallsStillLeaveAThreadReading) {
  zmanager::BaseManager manager(zmanager::ManagerOptions{.threads = 1});
  test::register_all(manager);
  manager.start();
  auto first = manager.create<Sleeper>("Sleeper");
  auto second = manager.create<Sleeper>("Sleeper");
  auto nap1 = first.async().nap(1500);
  auto nap2 = second.async().nap(1500);
  // Two threads (the worker and the serving thread) are both busy now or soon; a third call is
  // read once one of them is free again, and nothing is lost.
  auto maths = manager.create<Maths>("Maths");
  EXPECT_EQ(maths.add(1, 1), 2);
  ASSERT_TRUE(nap1.wait_for(30s));
  ASSERT_TRUE(nap2.wait_for(30s));
  EXPECT_EQ(nap1.get() + nap2.get(), 3000);
}

// Sends 50 maths.add calls and a 3 s nap back to back on one connection (so that the server
// reads them in one batch), the nap first or last, and checks that every add is answered while
// the nap still runs.
void expect_adds_answered_beside_a_slow_call(zmanager::BaseManager& manager, bool nap_first) {
  test::register_all(manager);
  manager.start();
  auto sleeper = manager.create<Sleeper>("Sleeper");
  auto maths = manager.create<Maths>("Maths");
  std::optional<zmanager::Future<int>> nap;
  if (nap_first) nap = sleeper.async().nap(3000);
  std::vector<zmanager::Future<int>> sums;
  for (int i = 0; i < 50; ++i) sums.push_back(maths.async().add(i, 1));
  if (!nap_first) nap = sleeper.async().nap(3000);
  for (int i = 0; i < 50; ++i) {
    auto& sum = sums[static_cast<std::size_t>(i)];
    ASSERT_TRUE(sum.wait_for(10s)) << "call " << i;
    EXPECT_EQ(sum.get(), i + 1);
  }
  EXPECT_FALSE(nap->ready()) << "calls sent beside the slow one waited for it";
  ASSERT_TRUE(nap->wait_for(30s));
  EXPECT_EQ(nap->get(), 3000);
}

// The polling thread runs the calls it reads itself and lends the polling meanwhile: a slow
// one is noticed by an idle thread, which takes the polling over together with the requests
// already read behind the slow call in the same batch.
TEST(Pool, CallsReadBehindASlowOneAreAnsweredWhileItRuns) {
  zmanager::BaseManager manager(zmanager::ManagerOptions{.threads = 1});
  expect_adds_answered_beside_a_slow_call(manager, true);
}

// The replies of a poll step are sent together at its end: those of calls read just ahead of
// a slow one are sent once the polling is taken over, not when the slow call ends.
TEST(Pool, RepliesOfCallsReadAheadOfASlowOneAreNotHeldBackByIt) {
  // A long heartbeat, so that nothing else (a ping) would wake the server and send them.
  zmanager::BaseManager manager(
      zmanager::ManagerOptions{.heartbeat_interval = 20s, .session_ttl = 60s, .threads = 1});
  expect_adds_answered_beside_a_slow_call(manager, false);
}

TEST(Pool, ASlowCallAfterTheServerWasIdleIsStillTakenOver) {
  zmanager::BaseManager manager(zmanager::ManagerOptions{.threads = 1});
  test::register_all(manager);
  manager.start();
  auto sleeper = manager.create<Sleeper>("Sleeper");
  auto maths = manager.create<Maths>("Maths");
  // The idleness under test: with nothing to watch for a while, the thread watching for slow
  // calls sleeps until the next call wakes it.
  std::this_thread::sleep_for(200ms);
  auto nap = sleeper.async().nap(3000);
  EXPECT_EQ(maths.add(1, 1), 2);
  EXPECT_FALSE(nap.ready()) << "a call waited for the slow one";
  ASSERT_TRUE(nap.wait_for(30s));
}

}  // namespace

namespace {

// TypeOptions::short_calls: calls run on the thread that read them. They still answer, park
// and respect `exposed` exactly as other calls do.
TEST(Pool, ShortCallTypesAnswerParkAndKeepTheirExposedMethods) {
  zmanager::BaseManager manager(zmanager::ManagerOptions{.threads = 1});
  manager.register_type<Maths>("Maths",
                               zmanager::TypeOptions{.exposed = {"add"}, .short_calls = true});
  manager.register_type<Mailbox>("Mailbox", zmanager::TypeOptions{.short_calls = true});
  manager.start();
  auto maths = manager.create<Maths>("Maths");
  auto mailbox = manager.create<Mailbox>("Mailbox");
  EXPECT_EQ(maths.add(2, 3), 5);
  EXPECT_THROW(maths.mul(2, 3), zmanager::AttributeError);
  auto letter = mailbox.async().get(10000);  // parked on the server
  std::vector<zmanager::Future<int>> sums;
  for (int i = 0; i < 100; ++i) sums.push_back(maths.async().add(i, i));
  for (int i = 0; i < 100; ++i) EXPECT_EQ(sums[static_cast<std::size_t>(i)].get(), 2 * i);
  EXPECT_FALSE(letter.ready());
  mailbox.post("hello");
  ASSERT_TRUE(letter.wait_for(10s));
  EXPECT_EQ(letter.get(), "hello");
}

}  // namespace
