// Parked calls with deadlines: the server's timers answer them without a thread per waiter.
#include <gtest/gtest.h>

#include "test_types.hpp"

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

class Timers : public ::testing::Test {
 protected:
  void SetUp() override {
    test::register_all(manager);
    manager.start();
  }
  zmanager::BaseManager manager;
};

TEST_F(Timers, AParkedCallFailsWhenItsTimeoutPasses) {
  auto box = manager.create<Mailbox>("Mailbox");
  auto start = Clock::now();
  EXPECT_THROW(box.get(300), zmanager::TimeoutError);
  auto took = Clock::now() - start;
  EXPECT_GE(took, 300ms);
  EXPECT_LT(took, 5s);
  EXPECT_EQ(box.waiting(), 0u);
}

TEST_F(Timers, AnAnswerBeforeTheTimeoutWins) {
  auto box = manager.create<Mailbox>("Mailbox");
  auto letter = box.async().get(10000);
  ASSERT_EQ(box.waiting(), 1u);  // parked before the post below
  box.post("hello");
  ASSERT_TRUE(letter.wait_for(5s));
  EXPECT_EQ(letter.get(), "hello");
  EXPECT_EQ(box.waiting(), 0u);
}

TEST_F(Timers, ManyWaitersTimeOutInDeadlineOrderAndTheServerKeepsServing) {
  auto box = manager.create<Mailbox>("Mailbox");
  auto maths = manager.create<Maths>("Maths");
  std::vector<zmanager::Future<std::string>> short_waits, long_waits;
  for (int i = 0; i < 500; ++i) short_waits.push_back(box.async().get(200));
  for (int i = 0; i < 5; ++i) long_waits.push_back(box.async().get(30000));
  EXPECT_EQ(maths.add(1, 2), 3);  // served while 505 calls are parked
  for (auto& f : short_waits) {
    ASSERT_TRUE(f.wait_for(10s));
    EXPECT_THROW(f.get(), zmanager::TimeoutError);
  }
  EXPECT_EQ(box.waiting(), 5u);  // the long waits are still parked
  for (int i = 0; i < 5; ++i) box.post("letter" + std::to_string(i));
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(long_waits[static_cast<std::size_t>(i)].get(), "letter" + std::to_string(i));
}

TEST_F(Timers, APendingTimerDoesNotKeepItsObjectAlive) {
  auto before = manager.stats().destroyed;
  zmanager::Future<std::string> parked;
  {
    auto box = manager.create<Mailbox>("Mailbox");
    parked = box.async().get(30000);
    ASSERT_EQ(box.waiting(), 1u);
  }  // the last proxy goes: the object goes, and the call parked in it fails at once
  ASSERT_TRUE(parked.wait_for(5s));
  EXPECT_THROW(parked.get(), zmanager::RuntimeError);
  EXPECT_EQ(manager.stats().destroyed, before + 1);
}

}  // namespace
