// Queue, LifoQueue, PriorityQueue, JoinableQueue: the cases CPython's _test_multiprocessing.py
// checks for a manager's queues, and that waiting costs the server no thread.
#include <algorithm>
#include <set>

#include "sync_fixture.hpp"

namespace test {
namespace {

class Queues : public SyncTest {};

TEST_F(Queues, FifoLifoAndPriorityOrder) {
  auto fifo = m().Queue<int>();
  auto lifo = m().LifoQueue<int>();
  auto prio = m().PriorityQueue<std::pair<int, std::string>>();
  for (int i : {3, 1, 2}) {
    fifo.put(i);
    lifo.put(i);
    prio.put({i, "job " + std::to_string(i)});
  }
  EXPECT_EQ(fifo.get(), 3);
  EXPECT_EQ(lifo.get(), 2);
  EXPECT_EQ(prio.get(), (std::pair<int, std::string>{1, "job 1"}));  // lowest first
  EXPECT_EQ(prio.get().first, 2);
  auto mixed = m().PriorityQueue();
  mixed.put(1);
  EXPECT_THROW(mixed.put("a"), zmanager::TypeError);  // as heapq: no order between int and str
  EXPECT_EQ(mixed.qsize(), 1u);
}

// A popped item's bytes go out in the reply without a copy; a stored one's are copied. Both
// must arrive intact while the server goes on changing its containers.
TEST_F(Queues, LargeBytesArriveIntactFromQueuesAndDicts) {
  auto q = m().Queue<zmanager::Bytes>();
  auto d = m().dict<int, zmanager::Bytes>();
  auto item = [](int i) {
    zmanager::Bytes b(64 * 1024);
    for (std::size_t k = 0; k < b.size(); ++k)
      b.data()[k] = std::byte(static_cast<unsigned>(i + k));
    return b;
  };
  for (int i = 0; i < 20; ++i) {
    q.put(item(i));
    d.set(i % 4, item(i));
  }
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(q.get(), item(i)) << "queue item " << i;
    EXPECT_EQ(d.get(i % 4), item(16 + i % 4)) << "dict entry " << i % 4;
    d.set(i % 4, item(16 + i % 4));  // replaced while the last reply may still be in flight
  }
}

TEST_F(Queues, QsizeEmptyAndFull) {
  auto q = m().Queue<std::string>(2);
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.maxsize(), 2u);
  q.put("x");
  q.put_nowait("y");
  EXPECT_EQ(q.qsize(), 2u);
  EXPECT_TRUE(q.full());
  EXPECT_FALSE(q.empty());
  EXPECT_EQ(q.get(), "x");
  EXPECT_EQ(q.get_nowait(), "y");
  EXPECT_TRUE(q.empty());
}

TEST_F(Queues, NonBlockingCallsFailAtOnceWhateverTheTimeout) {
  auto q = m().Queue<int>(1);
  q.put(1);
  auto elapsed = timed([&] {
    EXPECT_THROW(q.put(2, /*block=*/false, 10s), zmanager::Full);
    EXPECT_THROW(q.put_nowait(2), zmanager::Full);
    q.get();
    EXPECT_THROW(q.get(/*block=*/false, 10s), zmanager::Empty);
    EXPECT_THROW(q.get_nowait(), zmanager::Empty);
  });
  EXPECT_LT(elapsed, 5s);  // far below the 10 s timeouts
}

TEST_F(Queues, TimeoutsFailAfterAboutThatLong) {
  auto q = m().Queue<int>(1);
  auto get_wait = timed([&] { EXPECT_THROW(q.get(true, 200ms), zmanager::Empty); });
  EXPECT_GE(get_wait, 190ms);
  EXPECT_LT(get_wait, 5s);
  q.put(1);
  auto put_wait = timed([&] { EXPECT_THROW(q.put(2, true, 200ms), zmanager::Full); });
  EXPECT_GE(put_wait, 190ms);
  EXPECT_LT(put_wait, 5s);
  EXPECT_EQ(q.qsize(), 1u);                              // the timed-out put left nothing behind
  EXPECT_THROW(q.get(true, -1s), zmanager::ValueError);  // Python: non-negative timeouts only
  EXPECT_THROW(q.put(3, true, -1s), zmanager::ValueError);
  auto unbounded = m().Queue<int>();
  unbounded.put(1, true, -1s);  // Python checks it only where put() can wait
  EXPECT_EQ(unbounded.get(), 1);
}

TEST_F(Queues, ATimedOutWaiterIsRemoved) {
  auto q = m().Queue<int>();
  auto late = q.get_async(true, 100ms);
  EXPECT_THROW(late.get(), zmanager::Empty);
  EXPECT_EQ(q.waiting_getters(), 0u);
  q.put(7);
  EXPECT_EQ(q.qsize(), 1u);  // nobody took it on the gone waiter's behalf
  EXPECT_EQ(q.get(), 7);
}

TEST_F(Queues, AGetPastItsCallDeadlineTakesNoItemLater) {
  auto q = m().Queue<std::int64_t>();
  EXPECT_THROW(zmanager::with_timeout(q, 100ms).get(), zmanager::TimeoutError);
  EXPECT_EQ(q.waiting_getters(), 0u);
  q.put(5);
  EXPECT_EQ(q.qsize(), 1u) << "the item went to the call that had timed out";
}

TEST_F(Queues, AParkedPutCompletesWhenRoomIsMade) {
  auto q = m().Queue<int>(1);
  q.put(1);
  auto put = q.put_async(2);
  EXPECT_FALSE(put.wait_for(100ms));
  EXPECT_EQ(q.get(), 1);
  ASSERT_TRUE(put.wait_for(10s));
  put.get();
  EXPECT_EQ(q.get(), 2);
}

TEST_F(Queues, AParkedGetIsAnsweredByAPutFromAnotherConnection) {
  auto q = m().Queue<std::string>();
  auto got = q.get_async();
  ASSERT_TRUE(eventually([&] { return q.waiting_getters() == 1; }));
  objects()["queue"] = zmanager::Value(q);
  zmanager::SyncManager other({.address = m().address(), .authkey = m().authkey()});
  other.connect();
  other.shared_dict("objects")["queue"].as<zmanager::QueueProxy<std::string>>().put("hello");
  ASSERT_TRUE(got.wait_for(10s));
  EXPECT_EQ(got.get(), "hello");
}

TEST_F(Queues, TaskDoneAndJoinWithWorkerProcesses) {
  auto tasks = m().JoinableQueue<std::int64_t>();
  auto done = m().list<std::int64_t>();
  objects()["tasks"] = zmanager::Value(tasks);
  objects()["done"] = zmanager::Value(done);
  std::vector<Child> workers;
  for (int w = 0; w < 3; ++w) workers.push_back(client({"queue-worker"}));
  for (std::int64_t i = 1; i <= 30; ++i) tasks.put(i);
  for (int w = 0; w < 3; ++w) tasks.put(-1);
  auto joined = tasks.join_async();
  ASSERT_TRUE(joined.wait_for(60s));
  joined.get();
  // join() returned: every task was marked done, so every square is in the list.
  auto squares = done.to_vector();
  std::sort(squares.begin(), squares.end());
  ASSERT_EQ(squares.size(), 30u);
  for (std::int64_t i = 1; i <= 30; ++i) EXPECT_EQ(squares[static_cast<std::size_t>(i - 1)], i * i);
  int worked = 0;
  for (auto& w : workers) {
    auto line = w.read_line();
    ASSERT_TRUE(line);
    worked += std::stoi(line->substr(7));
    EXPECT_EQ(w.wait(), 0);
  }
  EXPECT_EQ(worked, 30);
  EXPECT_THROW(tasks.task_done(), zmanager::ValueError);  // one more than was put
}

TEST_F(Queues, AThousandWaitersOnOneQueueEachGetExactlyOneItem) {
  constexpr int kClients = 4, kPerClient = 250, kTotal = kClients * kPerClient;
  auto q = m().Queue<std::int64_t>();
  objects()["queue"] = zmanager::Value(q);
  std::vector<Child> clients;
  for (int c = 0; c < kClients; ++c) clients.push_back(client({"get-many", "250"}));
  // All 1,000 gets parked on the server at once: pending replies, no thread each.
  ASSERT_TRUE(eventually([&] { return q.waiting_getters() == kTotal; }, 60s))
      << q.waiting_getters() << " waiting";
  for (std::int64_t i = 0; i < kTotal; ++i) q.put(i);
  std::multiset<std::int64_t> received;
  for (auto& c : clients) {
    for (int i = 0; i < kPerClient; ++i) {
      auto line = c.read_line();
      ASSERT_TRUE(line) << "a waiter got nothing";
      ASSERT_EQ(line->rfind("got ", 0), 0u) << *line;
      received.insert(std::stoll(line->substr(4)));
    }
    EXPECT_EQ(c.wait(), 0);
  }
  ASSERT_EQ(received.size(), static_cast<std::size_t>(kTotal));
  std::int64_t expected = 0;
  for (auto v : received) EXPECT_EQ(v, expected++);  // each item exactly once
  EXPECT_EQ(q.qsize(), 0u);
  EXPECT_EQ(q.waiting_getters(), 0u);
}

TEST_F(Queues, AGetLeftByAClientThatExitedDoesNotSwallowAnItem) {
  auto q = m().Queue<std::int64_t>();
  objects()["queue"] = zmanager::Value(q);
  auto sessions = m().stats().sessions;
  auto gone = client({"park-then-exit", "queue"});
  EXPECT_EQ(gone.read_line(), "parked 1");
  EXPECT_EQ(gone.wait(), 0);
  ASSERT_TRUE(eventually([&] { return m().stats().sessions == sessions; }));
  q.put(42);
  EXPECT_EQ(q.qsize(), 1u);  // not handed to the waiter whose session ended
  EXPECT_EQ(q.get(false), 42);
}

TEST_F(Queues, ItemsMayBeAnyValueIncludingProxies) {
  auto q = m().Queue();
  auto d = m().dict<std::string, int>();
  q.put(zmanager::Value(d));
  q.put(zmanager::Value(zmanager::Bytes(std::string(1 << 20, 'z'))));
  q.get().as<zmanager::DictProxy<std::string, int>>()["via queue"] = 1;
  EXPECT_EQ(d.get("via queue"), 1);
  EXPECT_EQ(q.get().as<zmanager::Bytes>().size(), std::size_t{1} << 20);
}

}  // namespace
}  // namespace test
