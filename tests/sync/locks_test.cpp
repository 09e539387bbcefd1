// Lock, RLock, Semaphore, BoundedSemaphore, Condition, Event and Barrier: the cases CPython's
// _test_multiprocessing.py checks for a manager's synchronization types, the C++ Lockable
// idioms, and that parked waiters hold no server thread.
#include <mutex>
#include <set>

#include "sync_fixture.hpp"

namespace test {
namespace {

class Locks : public SyncTest {};

TEST_F(Locks, LockAcquireAndReleaseRules) {
  auto lock = m().Lock();
  EXPECT_TRUE(lock.acquire());
  EXPECT_TRUE(lock.locked());
  EXPECT_FALSE(lock.acquire(/*blocking=*/false));
  auto waited = timed([&] { EXPECT_FALSE(lock.acquire(true, 150ms)); });
  EXPECT_GE(waited, 140ms);
  EXPECT_EQ(lock.waiting(), 0u);  // the timed-out acquire left the queue
  lock.release();
  EXPECT_FALSE(lock.locked());
  EXPECT_THROW(lock.release(), zmanager::RuntimeError);         // release unlocked lock
  EXPECT_THROW(lock.acquire(false, 1s), zmanager::ValueError);  // timeout on a non-blocking call
  EXPECT_THROW(lock.acquire(true, -2s), zmanager::ValueError);
}

TEST_F(Locks, FencingTokensGrowWithEveryGrant) {
  auto lock = m().Lock();
  auto first = lock.acquire_token();
  ASSERT_TRUE(first);
  EXPECT_EQ(lock.token(), *first);
  EXPECT_FALSE(lock.acquire_token(/*blocking=*/false)) << "held: no grant, no token";
  lock.release();
  EXPECT_THROW(lock.token(), zmanager::RuntimeError) << "no hold, no token";
  ASSERT_TRUE(lock.acquire());  // a plain acquire is a grant too
  auto second = lock.token();
  EXPECT_GT(second, *first);
  lock.release();

  auto rlock = m().RLock();
  auto outer = rlock.acquire_token();
  auto inner = rlock.acquire_token();
  ASSERT_TRUE(outer && inner);
  EXPECT_EQ(*inner, *outer) << "re-entering is the same hold";
  rlock.release();
  rlock.release();
  EXPECT_GT(*rlock.acquire_token(), *outer);
  rlock.release();
}

TEST_F(Locks, AnAcquirePastItsCallDeadlineIsNeverGrantedTheLock) {
  auto lock = m().Lock();
  lock.acquire();
  EXPECT_THROW(zmanager::with_timeout(lock, 100ms).acquire(), zmanager::TimeoutError);
  lock.release();
  EXPECT_FALSE(lock.locked()) << "the lock went to the acquire that had timed out";
}

TEST_F(Locks, APlainLockMayBeReleasedByAnotherClient) {
  auto lock = m().Lock();
  lock.acquire();
  objects()["lock"] = zmanager::Value(lock);
  auto other = client({"release", "lock"});
  EXPECT_EQ(other.read_line(), "released");  // Python allows it
  EXPECT_EQ(other.wait(), 0);
  EXPECT_FALSE(lock.locked());
}

TEST_F(Locks, AnRLockIsReentrantForItsThreadAndOnlyItsThread) {
  auto rlock = m().RLock();
  EXPECT_TRUE(rlock.acquire());
  EXPECT_TRUE(rlock.acquire());  // re-entered
  EXPECT_TRUE(rlock.is_owned());
  std::thread([&] {
    EXPECT_FALSE(rlock.is_owned());
    EXPECT_FALSE(rlock.acquire(false));
    EXPECT_THROW(rlock.release(), zmanager::RuntimeError);  // another thread of this client
  }).join();
  objects()["rlock"] = zmanager::Value(rlock);
  auto other = client({"release", "rlock"});
  EXPECT_EQ(other.read_line(), "RuntimeError");  // another client
  EXPECT_EQ(other.wait(), 0);
  rlock.release();
  EXPECT_TRUE(rlock.locked());  // one level left
  rlock.release();
  EXPECT_FALSE(rlock.locked());
  EXPECT_THROW(rlock.release(), zmanager::RuntimeError);
}

TEST_F(Locks, LocksWorkWithTheStandardGuards) {
  auto lock = m().Lock();
  auto rlock = m().RLock();
  {
    std::lock_guard guard(lock);
    EXPECT_TRUE(lock.locked());
  }
  EXPECT_FALSE(lock.locked());
  {
    std::unique_lock held(lock);
    std::unique_lock tried(lock, std::try_to_lock);
    EXPECT_FALSE(tried.owns_lock());
  }
  {
    std::scoped_lock both(lock, rlock);  // std::lock's deadlock avoidance over remote locks
    EXPECT_TRUE(lock.locked());
    EXPECT_TRUE(rlock.is_owned());
  }
  EXPECT_FALSE(lock.locked());
  EXPECT_FALSE(rlock.locked());
  auto sem = m().Semaphore(1);
  {
    std::lock_guard guard(sem);
    EXPECT_EQ(sem.get_value(), 0);
  }
  EXPECT_EQ(sem.get_value(), 1);
  EXPECT_TRUE(lock.try_lock_for(10ms));
  lock.unlock();
}

TEST_F(Locks, SemaphoreCounts) {
  auto sem = m().Semaphore(2);
  EXPECT_TRUE(sem.acquire());
  EXPECT_TRUE(sem.acquire());
  EXPECT_EQ(sem.get_value(), 0);
  EXPECT_FALSE(sem.acquire(false));
  EXPECT_FALSE(sem.acquire(true, 100ms));
  auto parked = sem.acquire_async();
  EXPECT_FALSE(parked.wait_for(50ms));
  sem.release();
  ASSERT_TRUE(parked.wait_for(10s));
  EXPECT_TRUE(parked.get());
  EXPECT_EQ(sem.get_value(), 0);
  sem.release(3);  // a plain Semaphore may go above its start
  EXPECT_EQ(sem.get_value(), 3);
  EXPECT_THROW(sem.acquire(false, 1s), zmanager::ValueError);
  EXPECT_THROW(sem.release(0), zmanager::ValueError);
  EXPECT_THROW(m().Semaphore(-1), zmanager::ValueError);

  auto bounded = m().BoundedSemaphore(1);
  bounded.acquire();
  bounded.release();
  EXPECT_THROW(bounded.release(), zmanager::ValueError);  // released too many times
  EXPECT_EQ(bounded.get_value(), 1);
}

TEST_F(Locks, ConditionNotifyWakesExactlyN) {
  auto cond = m().Condition();
  constexpr int kWaiters = 5;
  std::atomic<int> notified{0}, timed_out{0};
  std::vector<std::thread> waiters;
  for (int i = 0; i < kWaiters; ++i) {
    waiters.emplace_back([&] {
      std::lock_guard hold(cond);
      (cond.wait(30s) ? notified : timed_out)++;
    });
  }
  ASSERT_TRUE(eventually([&] { return cond.waiting() == kWaiters; }));
  {
    std::lock_guard hold(cond);
    cond.notify(2);
  }
  ASSERT_TRUE(eventually([&] { return notified == 2; }));
  EXPECT_EQ(cond.waiting(), 3u);  // exactly two woke
  {
    std::lock_guard hold(cond);
    cond.notify_all();
  }
  for (auto& t : waiters) t.join();
  EXPECT_EQ(notified, kWaiters);
  EXPECT_EQ(timed_out, 0);
}

TEST_F(Locks, ConditionWaitRules) {
  auto cond = m().Condition();
  EXPECT_THROW(cond.wait(1s), zmanager::RuntimeError);  // without the lock
  EXPECT_THROW(cond.notify(), zmanager::RuntimeError);
  EXPECT_THROW(cond.notify_all(), zmanager::RuntimeError);
  std::unique_lock hold(cond);
  auto waited = timed([&] { EXPECT_FALSE(cond.wait(150ms)); });
  EXPECT_GE(waited, 140ms);
  // The lock came back with the timeout: another thread cannot take it.
  std::thread([&] { EXPECT_FALSE(cond.acquire(false)); }).join();
  // Re-entrant (its RLock): a wait gives up every level and takes them all back.
  cond.acquire();
  std::thread notifier([&] {
    std::lock_guard other(cond);
    cond.notify();
  });
  EXPECT_TRUE(cond.wait(30s));
  notifier.join();
  cond.release();
  hold.unlock();
  std::thread([&] {
    EXPECT_TRUE(cond.acquire(false));
    cond.release();
  }).join();
}

TEST_F(Locks, ConditionWaitForAPredicate) {
  auto cond = m().Condition();
  auto ready = m().Value<bool>(false);
  std::unique_lock hold(cond);
  std::thread setter([&] {
    std::lock_guard other(cond);
    ready.set(true);
    cond.notify_all();
  });
  EXPECT_TRUE(cond.wait_for([&] { return ready.get(); }, 30s));
  setter.join();
  ready.set(false);
  auto waited = timed([&] { EXPECT_FALSE(cond.wait_for([&] { return ready.get(); }, 150ms)); });
  EXPECT_GE(waited, 140ms);
}

TEST_F(Locks, AConditionCanShareAGivenLock) {
  auto lock = m().Lock();
  auto cond = m().Condition(lock);
  cond.acquire();
  EXPECT_TRUE(lock.locked());
  EXPECT_FALSE(cond.wait(10ms));
  cond.release();
  EXPECT_FALSE(lock.locked());
  EXPECT_THROW(m().create_dynamic("Condition", zmanager::Value(m().Event())), zmanager::TypeError);
}

TEST_F(Locks, AConditionNotifiesAnotherProcess) {
  auto cond = m().Condition();
  objects()["cond"] = zmanager::Value(cond);
  auto waiter = client({"condition-wait", "30"});
  ASSERT_TRUE(eventually([&] { return cond.waiting() == 1; }));
  {
    std::lock_guard hold(cond);
    cond.notify();
  }
  EXPECT_EQ(waiter.read_line(), "notified");
  EXPECT_EQ(waiter.wait(), 0);
}

TEST_F(Locks, EventWaitReturnsTheFlag) {
  auto ev = m().Event();
  EXPECT_FALSE(ev.is_set());
  auto waited = timed([&] { EXPECT_FALSE(ev.wait(150ms)); });
  EXPECT_GE(waited, 140ms);
  std::vector<zmanager::Future<bool>> waiters;
  for (int i = 0; i < 10; ++i) waiters.push_back(ev.wait_async(30s));
  ev.set();
  for (auto& w : waiters) EXPECT_TRUE(w.get());
  EXPECT_TRUE(ev.is_set());
  EXPECT_TRUE(ev.wait(0s));
  ev.clear();
  EXPECT_FALSE(ev.wait(0s));
}

TEST_F(Locks, BarrierGivesEachPartyADistinctIndexAndRunsTheActionOnce) {
  auto probe = m().create<TripCounter>("TripCounter");
  int trips = probe.count();
  auto barrier = m().Barrier(3, "count_trip");
  EXPECT_EQ(barrier.parties(), 3u);
  objects()["barrier"] = zmanager::Value(barrier);
  auto other = client({"barrier-wait"});
  auto mine = barrier.wait_async(30s);
  ASSERT_TRUE(eventually([&] { return barrier.n_waiting() == 2; }));
  std::set<std::size_t> indices{barrier.wait(30s), mine.get()};
  auto line = other.read_line();
  ASSERT_TRUE(line && line->rfind("index ", 0) == 0) << line.value_or("nothing");
  indices.insert(std::stoul(line->substr(6)));
  EXPECT_EQ(indices, (std::set<std::size_t>{0, 1, 2}));
  EXPECT_EQ(probe.count(), trips + 1);
  EXPECT_EQ(barrier.n_waiting(), 0u);
  EXPECT_FALSE(barrier.broken());
  EXPECT_EQ(other.wait(), 0);
}

TEST_F(Locks, BarrierAbortResetAndTimeoutBreakIt) {
  auto barrier = m().Barrier(3);
  auto w1 = barrier.wait_async(30s);
  ASSERT_TRUE(eventually([&] { return barrier.n_waiting() == 1; }));
  barrier.abort();
  EXPECT_THROW(w1.get(), zmanager::BrokenBarrierError);
  EXPECT_TRUE(barrier.broken());
  EXPECT_THROW(barrier.wait(1s), zmanager::BrokenBarrierError);  // stays broken
  barrier.reset();
  EXPECT_FALSE(barrier.broken());

  auto w2 = barrier.wait_async(30s);
  ASSERT_TRUE(eventually([&] { return barrier.n_waiting() == 1; }));
  barrier.reset();  // a waiter of the reset cycle is told it broke
  EXPECT_THROW(w2.get(), zmanager::BrokenBarrierError);
  EXPECT_FALSE(barrier.broken());

  auto w3 = barrier.wait_async(30s);
  auto waited = timed([&] { EXPECT_THROW(barrier.wait(150ms), zmanager::BrokenBarrierError); });
  EXPECT_GE(waited, 140ms);
  EXPECT_THROW(w3.get(), zmanager::BrokenBarrierError);  // the timeout broke it for everyone
  EXPECT_TRUE(barrier.broken());

  auto timed_barrier = m().Barrier(2, std::nullopt, 100ms);  // the default timeout
  EXPECT_THROW(timed_barrier.wait(), zmanager::BrokenBarrierError);
}

TEST_F(Locks, AFailingBarrierActionBreaksTheBarrier) {
  auto barrier = m().Barrier(2, "fail");
  auto first = barrier.wait_async(30s);
  ASSERT_TRUE(eventually([&] { return barrier.n_waiting() == 1; }));
  EXPECT_THROW(barrier.wait(30s), zmanager::ValueError);  // the action's own error
  EXPECT_THROW(first.get(), zmanager::BrokenBarrierError);
  EXPECT_TRUE(barrier.broken());
  EXPECT_THROW(m().Barrier(2, "no such action"), zmanager::KeyError);
  EXPECT_THROW(m().Barrier(0), zmanager::ValueError);
}

TEST_F(Locks, WaitersOfAClientThatExitedAreNeverGrantedAnything) {
  auto sessions = m().stats().sessions;
  auto lock = m().Lock();
  auto sem = m().Semaphore(0);
  auto cond = m().Condition();
  objects()["lock"] = zmanager::Value(lock);
  objects()["semaphore"] = zmanager::Value(sem);
  objects()["cond"] = zmanager::Value(cond);
  lock.acquire();
  for (const char* what : {"lock", "semaphore", "cond"}) {
    auto gone = client({"park-then-exit", what});
    EXPECT_EQ(gone.read_line(), "parked 1") << what;
    EXPECT_EQ(gone.wait(), 0);
  }
  ASSERT_TRUE(eventually([&] { return m().stats().sessions == sessions; }));
  // Their parked calls are dropped with their sessions.
  EXPECT_TRUE(eventually([&] { return lock.waiting() == 0 && cond.waiting() == 0; }));
  lock.release();
  EXPECT_FALSE(lock.locked());  // not handed to the acquire whose client is gone
  sem.release();
  EXPECT_EQ(sem.get_value(), 1);
  // notify(1) wakes a live waiter, not the one whose client is gone.
  std::atomic<bool> woke{false};
  std::thread live([&] {
    std::lock_guard hold(cond);
    woke = cond.wait(30s);
  });
  ASSERT_TRUE(eventually([&] { return cond.waiting() == 1; }));
  {
    std::lock_guard hold(cond);
    cond.notify(1);
  }
  live.join();
  EXPECT_TRUE(woke);
}

TEST_F(Locks, TwoHundredClientsWaitingOnALockDoNotStopOtherCalls) {
  auto lock = m().Lock();
  lock.acquire();
  objects()["lock"] = zmanager::Value(lock);
  std::vector<Child> clients;
  for (int c = 0; c < 4; ++c) clients.push_back(client({"acquire-many", "50"}));
  ASSERT_TRUE(eventually([&] { return lock.waiting() == 200; }, 60s))
      << lock.waiting() << " waiting";
  // 200 parked acquires hold no server thread: an unrelated call goes straight through.
  auto d = m().dict<std::string, int>();
  auto set = d.dynamic().call_async<void>("setitem", "unrelated", 1);
  ASSERT_TRUE(set.wait_for(5s));
  set.get();
  EXPECT_EQ(d.get("unrelated"), 1);
  lock.release();  // each waiter in turn takes and releases it
  for (auto& c : clients) {
    EXPECT_EQ(c.read_line(60s), "acquired 50");
    EXPECT_EQ(c.wait(), 0);
  }
  EXPECT_FALSE(lock.locked());
}

}  // namespace
}  // namespace test
