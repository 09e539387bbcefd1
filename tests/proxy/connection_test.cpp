// The client connection's sharing of one socket between calling threads (proxy/src/connection.cpp):
// a thread waiting for a reply reads for everyone, others queue behind it, nothing is lost.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "test_types.hpp"
#include "zmanager/connection.hpp"

using namespace std::chrono_literals;

namespace {

class Connection : public ::testing::Test {
 protected:
  void SetUp() override {
    test::register_all(manager);
    manager.start();
  }
  zmanager::BaseManager manager;
};

TEST_F(Connection, CallsGoThroughWhileAnotherThreadWaitsForAParkedReply) {
  auto mailbox = manager.create<Mailbox>("Mailbox");
  auto maths = manager.create<Maths>("Maths");
  std::string letter;
  std::thread waiter([&] { letter = mailbox.get(10000); });  // reads the socket while it waits
  // These calls are queued for the waiting thread, which sends them and reads their replies.
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (mailbox.waiting() == 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::yield();
  ASSERT_EQ(mailbox.waiting(), 1u);
  for (int i = 0; i < 100; ++i) ASSERT_EQ(maths.add(i, 1), i + 1);
  mailbox.post("hello");
  waiter.join();
  EXPECT_EQ(letter, "hello");
}

TEST_F(Connection, ManyThreadsWithCallsInFlightEachGetTheirOwnReplies) {
  auto maths = manager.create<Maths>("Maths");
  constexpr int kThreads = 4, kRounds = 50, kWindow = 32;
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < kRounds; ++round) {
        std::vector<zmanager::Future<int>> window;
        for (int i = 0; i < kWindow; ++i)
          window.push_back(maths.async().add(t * 100000 + i, round));
        for (int i = 0; i < kWindow; ++i) {
          if (!window[static_cast<std::size_t>(i)].wait_for(10s)) {
            ++wrong;
            return;
          }
          if (window[static_cast<std::size_t>(i)].get() != t * 100000 + i + round) ++wrong;
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(wrong.load(), 0);
}

// A thread that sends its synchronous call itself keeps the socket for its wait; the others
// queue their calls for it or take the socket after it, and every one gets its own result.
TEST_F(Connection, ManyThreadsMakingSynchronousCallsEachGetTheirOwnResults) {
  auto maths = manager.create<Maths>("Maths");
  constexpr int kThreads = 6, kCalls = 300;
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kCalls; ++i)
        if (maths.add(t * 100000, i) != t * 100000 + i) ++wrong;
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST_F(Connection, AFutureBecomesReadyWithNoThreadWaitingOnIt) {
  auto maths = manager.create<Maths>("Maths");
  auto sum = maths.async().add(2, 3);
  // ready() reads what has arrived when no other thread is reading; it never blocks.
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!sum.ready() && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  ASSERT_TRUE(sum.ready());
  EXPECT_EQ(sum.get(), 5);
}

TEST_F(Connection, ClosingFailsACallAnotherThreadIsWaitingFor) {
  auto channel = zmanager::connect({manager.address(), manager.authkey()});
  auto queue = zmanager::server_proxy(channel).call<zmanager::Proxy<JobQueue>>(
      "shared", std::string("shared_queue"));
  auto parked = queue.async().get();  // nothing is ever put: only closing ends it
  std::atomic<bool> failed_as_closed{false};
  std::thread waiter([&] {
    if (!parked.wait_for(10s)) return;
    try {
      parked.get();
    } catch (const zmanager::ConnectionError&) {
      failed_as_closed = true;
    }
  });
  auto observer = manager.get_shared<JobQueue>("shared_queue");
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (observer.waiting() == 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::yield();
  ASSERT_EQ(observer.waiting(), 1u);
  channel->close();
  waiter.join();
  EXPECT_TRUE(failed_as_closed);
  EXPECT_THROW(queue.qsize(), zmanager::ConnectionError);
}

}  // namespace
