// What a client holds in the built-ins belongs to its session: when the client is killed (kill
// -9, no goodbye) or paused past its ttl, the session expires and the server gives everything
// back: the lock to the next waiter, the permit, the barrier broken, the parked calls dropped,
// the queue's unfinished tasks counted done. Python's managers keep all of it forever.
#include <csignal>

#include "sync_fixture.hpp"

namespace {

using test::Child;
using test::eventually;

// A short lease, so that expiry is quick to see, but long beside the heartbeat, so that no live
// client expires even in a sanitizer build.
constexpr auto kHeartbeat = 100ms;
constexpr auto kTtl = 1500ms;
// How long after a kill the server may take: a ttl, the sweep that notices it, and slack for a
// loaded machine.
constexpr auto kExpiryDeadline = kTtl + 5s;

class Leases : public test::SyncTest {
 protected:
  static void SetUpTestSuite() {
    start_server({.heartbeat_interval = kHeartbeat, .session_ttl = kTtl, .threads = 2});
  }

  /// Kills `child` with SIGKILL and returns when it is dead.
  static std::chrono::steady_clock::time_point kill(Child& child) {
    child.signal(SIGKILL);
    EXPECT_EQ(child.wait(), 128 + SIGKILL);
    return std::chrono::steady_clock::now();
  }
  static std::uint64_t token_of(const std::optional<std::string>& line) {
    EXPECT_TRUE(line && line->rfind("holding ", 0) == 0) << line.value_or("(nothing)");
    return line ? std::stoull(line->substr(8)) : 0;
  }
};

TEST_F(Leases, AKilledLockHolderLosesTheLockToTheNextWaiterWithinTheTtl) {
  auto lock = m().Lock();
  objects()["lock"] = zmanager::Value(lock);
  auto holder = client({"hold", "lock", "60"});
  std::uint64_t first = token_of(holder.read_line());

  auto next = lock.dynamic().call_async<std::uint64_t>(
      "acquire_token", zmanager::detail::thread_token(), true, 30.0);
  ASSERT_TRUE(eventually([&] { return lock.waiting() == 1; }));
  auto killed = kill(holder);
  ASSERT_TRUE(next.wait_for(kExpiryDeadline)) << "the lock of a killed client stayed locked";
  auto waited = std::chrono::steady_clock::now() - killed;
  std::uint64_t second = next.get();
  EXPECT_GT(second, first) << "fencing tokens grow with every grant";
  EXPECT_GE(waited, kTtl - 2 * kHeartbeat) << "released before the lease ran out";
  EXPECT_EQ(lock.token(), second);
  lock.release();
  EXPECT_FALSE(lock.locked());
}

TEST_F(Leases, AKilledHoldersPermitReturnsToTheSemaphore) {
  auto sem = m().BoundedSemaphore(1);
  objects()["semaphore"] = zmanager::Value(sem);
  auto holder = client({"hold", "semaphore", "60"});
  ASSERT_EQ(holder.read_line(), "holding");
  EXPECT_EQ(sem.get_value(), 0);
  auto acquired = sem.acquire_async(true, 30s);
  kill(holder);
  ASSERT_TRUE(acquired.wait_for(kExpiryDeadline));
  EXPECT_TRUE(acquired.get());
  sem.release();
  EXPECT_EQ(sem.get_value(), 1) << "a BoundedSemaphore never goes above its initial value";
}

TEST_F(Leases, AKilledPartyBreaksTheBarrierForTheOthers) {
  auto barrier = m().Barrier(3);
  objects()["barrier"] = zmanager::Value(barrier);
  auto party = client({"barrier-wait"});
  ASSERT_TRUE(eventually([&] { return barrier.n_waiting() == 1; }));
  auto mine = barrier.dynamic().call_async<std::int64_t>("wait", 30.0);
  ASSERT_TRUE(eventually([&] { return barrier.n_waiting() == 2; }));
  kill(party);
  ASSERT_TRUE(mine.wait_for(kExpiryDeadline)) << "a barrier waited forever for a dead party";
  EXPECT_THROW(mine.get(), zmanager::BrokenBarrierError);
  EXPECT_TRUE(barrier.broken());
}

TEST_F(Leases, AJoinDoesNotWaitForTheTaskAKilledWorkerTook) {
  auto tasks = m().JoinableQueue<std::int64_t>();
  objects()["tasks"] = zmanager::Value(tasks);
  tasks.put(7);
  tasks.put(8);
  auto worker = client({"hold", "tasks", "60"});
  ASSERT_EQ(worker.read_line(), "holding 7");
  EXPECT_EQ(tasks.get(), 8);
  tasks.task_done();
  auto joined = tasks.join_async();
  EXPECT_FALSE(joined.wait_for(100ms)) << "task 7 is still being worked on";
  kill(worker);
  ASSERT_TRUE(joined.wait_for(kExpiryDeadline)) << "join() waited for a dead worker's task";
  joined.get();
  EXPECT_EQ(tasks.qsize(), 0u) << "a task a dead worker took is not handed out again";
}

TEST_F(Leases, TheParkedCallsOfAKilledClientAreDroppedAndTakeNothing) {
  auto queue = m().Queue<std::int64_t>();
  objects()["queue"] = zmanager::Value(queue);
  auto waiting = client({"get-many", "3"});
  ASSERT_TRUE(eventually([&] { return queue.waiting_getters() == 3; }));
  kill(waiting);
  ASSERT_TRUE(eventually([&] { return queue.waiting_getters() == 0; }, kExpiryDeadline));
  queue.put(1);
  EXPECT_EQ(queue.qsize(), 1u) << "an item went to a dead client";
}

TEST_F(Leases, APausedHolderLearnsItsSessionEndedAndThatItNoLongerHoldsTheLock) {
  auto lock = m().Lock();
  objects()["lock"] = zmanager::Value(lock);
  // The holder computes for a while without calling the server, then releases the lock.
  auto holder = client({"hold", "lock", "1"});
  std::uint64_t first = token_of(holder.read_line());
  holder.signal(SIGSTOP);  // paused past its ttl: no heartbeat leaves it
  auto mine = lock.acquire_token(true, 30s);
  ASSERT_TRUE(mine) << "a paused client kept the lock";
  EXPECT_GT(*mine, first);
  holder.signal(SIGCONT);
  auto said = holder.read_line();
  ASSERT_TRUE(said);
  // It has reconnected since (a new session), and its proxy to the lock is of the old one.
  EXPECT_EQ(said->rfind("StaleProxyError: ", 0), 0u) << *said;
  EXPECT_NE(said->find("session has ended"), std::string::npos) << *said;
  EXPECT_EQ(holder.wait(), 0);
  EXPECT_EQ(lock.token(), *mine) << "the lock is still this client's";
  lock.release();
}

TEST_F(Leases, AClientThatExitsHoldingALockReleasesItWithoutWaitingForTheTtl) {
  auto lock = m().Lock();
  objects()["lock"] = zmanager::Value(lock);
  // Returning from main (destructors run), and calling exit() deep inside (none of the local
  // BaseManager's destructors run): both say goodbye.
  for (const char* how : {"-1", "-2"}) {
    auto expired = m().stats().expired_sessions;
    auto holder = client({"hold", "lock", how});
    token_of(holder.read_line());
    ASSERT_EQ(holder.wait(), 0);
    EXPECT_TRUE(lock.acquire(true, 30s));
    EXPECT_EQ(m().stats().expired_sessions, expired)
        << how << ": released by expiry, not by the goodbye";
    lock.release();
  }
}

}  // namespace
