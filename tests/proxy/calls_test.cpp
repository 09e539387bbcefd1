// Calls through proxies against a server running in a child process, over TCP loopback.
#include <gtest/gtest.h>

#include <thread>

#include "process.hpp"
#include "test_types.hpp"
#include "timing.hpp"

using namespace std::chrono_literals;

namespace {

class Calls : public ::testing::Test {
 protected:
  void SetUp() override {
    test::register_all(manager);
    manager.start();
  }
  zmanager::ServerStats stats() { return manager.stats(); }
  std::uint64_t live(const std::string& type) {
    auto s = stats();
    auto it = s.objects_by_type.find(type);
    return it == s.objects_by_type.end() ? 0 : it->second;
  }

  zmanager::BaseManager manager;
};

TEST_F(Calls, TypedCallsReturnTheMethodsResults) {
  auto maths = manager.create<Maths>("Maths");
  EXPECT_EQ(maths.add(4, 3), 7);
  EXPECT_EQ(maths.mul(7, 8), 56);
  EXPECT_DOUBLE_EQ(maths.scale(2.5, 2), 5.0);  // the int converts to the declared double
  EXPECT_EQ(maths.greet("zmanager"), "hello zmanager");
  EXPECT_EQ(maths.range(4), (std::vector<int>{0, 1, 2, 3}));
  auto h = maths.histogram(std::vector<std::string>{"a", "b", "a"});
  EXPECT_EQ(h, (std::map<std::string, int>{{"a", 2}, {"b", 1}}));
  EXPECT_EQ(maths.maybe(true), std::optional<int>(42));
  EXPECT_EQ(maths.maybe(false), std::nullopt);
}

TEST_F(Calls, StructsWithMsgpackDefineAndBoostSerializationCrossTheWire) {
  auto maths = manager.create<Maths>("Maths");
  test::Point moved = maths.move(test::Point{1.0, 2.0, "p"}, 0.5);
  EXPECT_EQ(moved, (test::Point{1.5, 2.0, "p"}));
  test::Matrix m{2, 3, {1, 2, 3, 4, 5, 6}};
  test::Matrix t = maths.transpose(m);
  EXPECT_EQ(t, (test::Matrix{3, 2, {1, 4, 2, 5, 3, 6}}));
}

TEST_F(Calls, DynamicCallsNeedOnlyTheMethodName) {
  auto maths = manager.create<Maths>("Maths");
  EXPECT_EQ(maths.call<int>("add", 2, 2), 4);
  EXPECT_EQ(maths.call<std::string>("greet", std::string("x")), "hello x");
  zmanager::DynamicProxy any(maths.ref());
  EXPECT_EQ(any.call<int>("mul", 6, 7), 42);
}

TEST_F(Calls, AsyncCallsReturnFutures) {
  auto maths = manager.create<Maths>("Maths");
  zmanager::Future<int> f = maths.async().add(1, 2);
  auto g = maths.call_async<int>("mul", 3, 4);
  ASSERT_TRUE(f.wait_for(10s));
  EXPECT_EQ(f.get(), 3);
  EXPECT_EQ(g.get(), 12);
}

TEST_F(Calls, TenThousandPipelinedCallsAreMatchedToTheirRequests) {
  auto maths = manager.create<Maths>("Maths");
  auto async = maths.async();
  std::vector<zmanager::Future<int>> futures;
  futures.reserve(10000);
  for (int i = 0; i < 10000; ++i) futures.push_back(async.add(i, i * 1000));
  for (int i = 0; i < 10000; ++i) {
    ASSERT_TRUE(futures[static_cast<std::size_t>(i)].wait_for(30s)) << "call " << i;
    ASSERT_EQ(futures[static_cast<std::size_t>(i)].get(), i + i * 1000) << "call " << i;
  }
}

// zmanager::Batch: calls leave together (the server counts BATCH messages), in order, a call
// with blob frames among them leaves on its own, and each gets its own answer.
TEST_F(Calls, CallsMadeInABatchLeaveTogetherInOrderAndEachGetsItsAnswer) {
  auto maths = manager.create<Maths>("Maths");
  auto counter = manager.create<Counter>("Counter", 0);
  const auto batches_before = stats().batches;
  std::vector<zmanager::Future<int>> counts;
  std::vector<zmanager::Future<int>> sums;
  zmanager::Future<std::size_t> blob_length;
  zmanager::Future<int> failing;
  {
    zmanager::Batch batch(maths);
    for (int i = 0; i < 100; ++i) {
      counts.push_back(counter.async().increment(1));
      sums.push_back(maths.async().add(i, 1));
      if (i == 50) blob_length = maths.async().length(zmanager::Bytes(std::string(1 << 20, 'b')));
      if (i == 60) failing = maths.async().fail_key("k");
    }
    // Waiting sends what is held, so a wait inside the batch never stalls on its own call.
    ASSERT_TRUE(sums.back().wait_for(10s));
  }
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(counts[static_cast<std::size_t>(i)].wait_for(10s)) << i;
    EXPECT_EQ(counts[static_cast<std::size_t>(i)].get(), i + 1) << "out of order";
    EXPECT_EQ(sums[static_cast<std::size_t>(i)].get(), i + 1);
  }
  EXPECT_EQ(blob_length.get(), std::size_t{1} << 20);
  EXPECT_THROW(failing.get(), zmanager::KeyError);
  // 201 small calls, at most 32 to a message: at least 4 batches.
  EXPECT_GE(stats().batches - batches_before, 4u);
}

TEST_F(Calls, ACallHeldByABatchIsSentWhenAnotherThreadWaitsForIt) {
  auto maths = manager.create<Maths>("Maths");
  zmanager::Batch batch(maths);
  auto sum = maths.async().add(2, 3);
  bool answered = false;
  std::thread waiter([&] { answered = sum.wait_for(10s); });
  waiter.join();
  EXPECT_TRUE(answered);
  EXPECT_EQ(sum.get(), 5);
  EXPECT_EQ(maths.add(1, 1), 2);  // a synchronous call inside a batch: sent, then waited for
}

TEST_F(Calls, ABatchEndingSendsWhatItHeldWithoutAnyWait) {
  auto maths = manager.create<Maths>("Maths");
  auto mailbox = manager.create<Mailbox>("Mailbox");
  auto letter = mailbox.async().get(10000);  // parked on the server until a post
  {
    zmanager::Batch batch(maths);
    mailbox.async().post("first");
    mailbox.async().post("second");
    batch.flush();
    mailbox.async().post("third");
  }  // nobody waits on the posts: the batch's end sends the last one
  ASSERT_TRUE(letter.wait_for(10s));
  EXPECT_EQ(letter.get(), "first");
  EXPECT_EQ(mailbox.get(1000), "second");
  EXPECT_EQ(mailbox.get(1000), "third");
}

// Calls made while others are in flight wait to leave together, as in a Batch, without one:
// the server counts BATCH messages. They leave in order, whatever comes after them.
TEST_F(Calls, CallsMadeWhileOthersAreInFlightLeaveTogetherInOrder) {
  auto maths = manager.create<Maths>("Maths");
  auto mailbox = manager.create<Mailbox>("Mailbox");
  auto letter = mailbox.async().get(20000);  // in flight, parked on the server
  const auto batches_before = stats().batches;
  auto parked = mailbox.async().get(20000);  // the stats call above may have flushed the first
  std::vector<zmanager::Future<int>> sums;
  for (int i = 0; i < 64; ++i) sums.push_back(maths.async().add(i, 1));
  mailbox.async().post("first");
  auto blob_length = maths.async().length(zmanager::Bytes(std::string(1 << 20, 'b')));
  mailbox.async().post("second");
  for (int i = 0; i < 64; ++i) {
    ASSERT_TRUE(sums[static_cast<std::size_t>(i)].wait_for(10s)) << i;
    EXPECT_EQ(sums[static_cast<std::size_t>(i)].get(), i + 1);
  }
  ASSERT_TRUE(letter.wait_for(10s));
  EXPECT_EQ(letter.get(), "first");
  ASSERT_TRUE(parked.wait_for(10s));
  EXPECT_EQ(parked.get(), "second");
  EXPECT_EQ(blob_length.get(), std::size_t{1} << 20);
  // 64 small calls, at most 32 to a message: at least 2 batches.
  EXPECT_GE(stats().batches - batches_before, 2u);
}

// A call held that way leaves on its own soon, though nobody ever waits on this connection:
// here a second client sees its effect long before the heartbeat (60 s) would have sent it.
TEST(CallsInFlight, ACallHeldBehindOthersLeavesWithoutAnyWait) {
  zmanager::ManagerOptions options;
  options.heartbeat_interval = 60s;
  options.session_ttl = 120s;
  zmanager::BaseManager manager(options);
  test::register_all(manager);
  manager.start();
  auto mailbox = manager.create<Mailbox>("Mailbox");
  auto counter = manager.get_shared<Counter>("shared_counter");
  auto letter = mailbox.async().get(30000);  // in flight: what follows may be held
  auto bumped = counter.async().increment(5);

  zmanager::ManagerOptions observer_options;
  observer_options.address = manager.address();
  observer_options.authkey = manager.authkey();
  zmanager::BaseManager observer(observer_options);
  test::register_all(observer);
  observer.connect();
  auto seen = observer.get_shared<Counter>("shared_counter");
  EXPECT_TRUE(test::eventually([&] { return seen.get() == 5; }, 10s))
      << "the held increment never left";

  mailbox.async().post("done");  // ends the parked get; waiting now is allowed
  ASSERT_TRUE(letter.wait_for(10s));
  EXPECT_EQ(letter.get(), "done");
  EXPECT_EQ(bumped.get(), 5);
}

TEST_F(Calls, LargeBytesTravelAsFramesBothWays) {
  auto maths = manager.create<Maths>("Maths");
  zmanager::Bytes big(8u << 20);
  for (std::size_t i = 0; i < big.size(); ++i) big.data()[i] = std::byte(i * 7 % 251);
  zmanager::Bytes back = maths.reverse(big);
  ASSERT_EQ(back.size(), big.size());
  for (std::size_t i = 0; i < big.size(); i += 4099)
    ASSERT_EQ(back.data()[i], big.data()[big.size() - 1 - i]) << i;
  EXPECT_EQ(maths.length(zmanager::Bytes("small")), 5u);  // inline, under the frame threshold
}

// Replies to calls in flight together leave the server in one BATCH when they are small; a
// large reply, a reply with blob frames and an error among them each still reach their caller.
TEST_F(Calls, RepliesOfEveryShapeInFlightTogetherEachReachTheirCaller) {
  auto maths = manager.create<Maths>("Maths");
  auto async = maths.async();
  const std::string long_name(100 * 1024, 'n');  // a reply body past what a batch takes in
  zmanager::Bytes blob(128 * 1024);              // a reply with a blob frame
  std::vector<zmanager::Future<int>> sums;
  std::vector<zmanager::Future<std::string>> greetings;
  std::vector<zmanager::Future<zmanager::Bytes>> reversed;
  std::vector<zmanager::Future<int>> failures;
  for (int i = 0; i < 200; ++i) {
    sums.push_back(async.add(i, 1));
    if (i % 20 == 0) greetings.push_back(async.greet(i % 40 == 0 ? long_name : "x"));
    if (i % 50 == 0) reversed.push_back(async.reverse(blob));
    if (i % 70 == 0) failures.push_back(async.fail_key("k" + std::to_string(i)));
  }
  for (std::size_t i = 0; i < sums.size(); ++i) {
    ASSERT_TRUE(sums[i].wait_for(10s)) << i;
    EXPECT_EQ(sums[i].get(), static_cast<int>(i) + 1);
  }
  for (std::size_t i = 0; i < greetings.size(); ++i)
    EXPECT_EQ(greetings[i].get(), "hello " + (i % 2 == 0 ? long_name : std::string("x"))) << i;
  for (auto& r : reversed) EXPECT_EQ(r.get().size(), blob.size());
  for (auto& f : failures) EXPECT_THROW(f.get(), zmanager::KeyError);
}

TEST_F(Calls, ProxiesPassedAsArgumentsAndReturnedReachTheSameObject) {
  auto maths = manager.create<Maths>("Maths");
  auto holder = manager.create<Holder>("Holder");
  EXPECT_EQ(holder.add_through(maths, 20, 22), 42);  // the server calls the object it was given
  holder.keep(maths);
  zmanager::Proxy<Maths> back = holder.give();
  ASSERT_TRUE(back);
  EXPECT_EQ(back.id(), maths.id());
  EXPECT_EQ(back.type_id(), "Maths");
  EXPECT_EQ(back.add(1, 1), 2);
}

TEST_F(Calls, ReturnedSharedObjectsComeBackAsProxies) {
  auto holder = manager.create<Holder>("Holder");
  zmanager::Proxy<Counter> c = holder.make_counter(5);
  EXPECT_EQ(c.type_id(), "Counter");
  EXPECT_EQ(c.increment(2), 7);
  auto a = holder.same_counter();
  auto b = holder.same_counter();
  EXPECT_EQ(a.id(), b.id());
  a.increment(1);
  EXPECT_EQ(b.get(), 101);
}

TEST_F(Calls, AnObjectIsDestroyedWhenItsLastProxyGoes) {
  auto before = stats();
  std::optional<zmanager::Proxy<Counter>> first = manager.create<Counter>("Counter", 3);
  EXPECT_EQ(live("Counter"), 2u);  // with the registered shared_counter
  std::optional<zmanager::Proxy<Counter>> copy = *first;
  first.reset();
  EXPECT_EQ(live("Counter"), 2u) << "a copy still refers to it";
  EXPECT_EQ(copy->get(), 3);
  copy.reset();
  auto after = stats();
  EXPECT_EQ(live("Counter"), 1u);
  EXPECT_EQ(after.destroyed, before.destroyed + 1);
}

// Regression: the reply to create() went out before the server dropped the reference it held
// while replying, so a release sent at once could leave the object alive until later (seen
// under TSan: stats() right after the release still counted it).
TEST_F(Calls, AnObjectReleasedRightAfterItsCreationIsGoneForTheNextCall) {
  auto before = stats().destroyed;
  for (std::uint64_t i = 1; i <= 100; ++i) {
    manager.create<Counter>("Counter", 0);  // the proxy is dropped at once: a release follows
    ASSERT_EQ(stats().destroyed, before + i) << "after " << i << " creations";
  }
}

TEST_F(Calls, AnObjectHeldByAnotherObjectLivesUntilReleasedThere) {
  auto holder = manager.create<Holder>("Holder");
  {
    auto maths = manager.create<Maths>("Maths");
    holder.keep(maths);
  }
  EXPECT_EQ(live("Maths"), 1u);
  EXPECT_TRUE(holder.holds());
  holder.drop();
  EXPECT_EQ(live("Maths"), 0u);
}

TEST_F(Calls, AProxyIsUsableFromManyThreadsAtOnce) {
  auto maths = manager.create<Maths>("Maths");
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 300; ++i)
        if (maths.add(t, i) != t + i) ++wrong;
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST_F(Calls, CallsOnOneObjectRunOneAtATime) {
  auto counter = manager.create<Counter>("Counter", 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      std::vector<zmanager::Future<int>> fs;
      for (int i = 0; i < 250; ++i) fs.push_back(counter.async().slow_increment());
      for (auto& f : fs) f.get();
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(counter.get(), 1000) << "an increment was lost: calls overlapped";
}

TEST_F(Calls, ASlowMethodDoesNotStallOtherObjects) {
  auto sleeper = manager.create<Sleeper>("Sleeper");
  auto maths = manager.create<Maths>("Maths");
  auto nap = sleeper.async().nap(3000);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(maths.add(i, 1), i + 1);
  EXPECT_FALSE(nap.ready()) << "calls on another object waited for the slow one";
  ASSERT_TRUE(nap.wait_for(30s));
  EXPECT_EQ(nap.get(), 3000);
}

TEST_F(Calls, ParkedCallsAreAnsweredByLaterCallsWithoutThreads) {
  auto q = manager.create<JobQueue>("JobQueue");
  std::vector<zmanager::Future<std::string>> gets;
  for (int i = 0; i < 50; ++i) gets.push_back(q.async().get());
  EXPECT_EQ(q.waiting(), 50u);  // more waiters than server threads: none of them holds one
  for (int i = 0; i < 50; ++i) q.put("item" + std::to_string(i));
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(gets[static_cast<std::size_t>(i)].wait_for(10s));
    EXPECT_EQ(gets[static_cast<std::size_t>(i)].get(), "item" + std::to_string(i));
  }
}

TEST_F(Calls, AParkedCallPastItsDeadlineIsTimedOutByTheServerAndTakesNothingLater) {
  auto q = manager.create<JobQueue>("JobQueue");
  auto waited =
      test::timed([&] { EXPECT_THROW(q.with_timeout(200ms).get(), zmanager::TimeoutError); });
  EXPECT_GE(waited, 190ms);
  EXPECT_LT(waited, 200ms + zmanager::detail::kDeadlineGrace) << "not the server's answer";
  q.put("job");
  EXPECT_EQ(q.qsize(), 1u) << "the job went to the call that had timed out";
  EXPECT_EQ(q.get(), "job");
  // An async call carries the proxy's timeout too.
  auto later = q.with_timeout(100ms).async().get();
  ASSERT_TRUE(later.wait_for(10s));
  EXPECT_THROW(later.get(), zmanager::TimeoutError);
}

TEST_F(Calls, AMethodRunningPastItsDeadlineTimesOutOnTheClientAndTheConnectionCarriesOn) {
  auto sleeper = manager.create<Sleeper>("Sleeper");
  auto maths = manager.create<Maths>("Maths");
  // A running method cannot be interrupted: the client stops waiting for its answer after the
  // deadline and a grace period.
  auto waited = test::timed(
      [&] { EXPECT_THROW(sleeper.with_timeout(100ms).nap(5000), zmanager::TimeoutError); });
  EXPECT_GE(waited, 100ms + zmanager::detail::kDeadlineGrace - 10ms);
  EXPECT_LT(waited, 4000ms);
  EXPECT_EQ(maths.add(2, 3), 5);
  EXPECT_EQ(sleeper.nap(1), 1) << "the late answer of the timed-out call was taken for this one";
}

TEST_F(Calls, TheManagersCallTimeoutIsTheDefaultOfEveryProxy) {
  zmanager::BaseManager client(
      {.address = manager.address(), .authkey = manager.authkey(), .call_timeout = 150ms});
  client.connect();
  auto q = client.create<JobQueue>("JobQueue");
  EXPECT_THROW(q.get(), zmanager::TimeoutError);
  auto patient = q.with_timeout(30s).async().get();
  q.put("x");
  ASSERT_TRUE(patient.wait_for(10s));
  EXPECT_EQ(patient.get(), "x");
}

TEST_F(Calls, SharedObjectsAreTheSameForEveryClientProcess) {
  auto counter = manager.get_shared<Counter>("shared_counter");
  std::vector<test::Child> children;
  for (int c = 0; c < 3; ++c)
    children.push_back(test::Child::spawn({ZMANAGER_TEST_CLIENT, manager.address(),
                                           manager.authkey(), "increment-shared-counter", "100"}));
  for (auto& child : children) ASSERT_EQ(child.wait(), 0);
  EXPECT_EQ(counter.get(), 300);
  auto again = manager.get_shared<Counter>("shared_counter");
  EXPECT_EQ(again.id(), counter.id());
}

TEST_F(Calls, ASharedQueueConnectsAProducerAndAConsumerProcess) {
  auto consumer = test::Child::spawn(
      {ZMANAGER_TEST_CLIENT, manager.address(), manager.authkey(), "consume-shared-queue", "10"});
  auto q = manager.get_shared<JobQueue>("shared_queue");
  for (int i = 0; i < 10; ++i) q.put("job" + std::to_string(i));
  EXPECT_EQ(consumer.wait(), 0);
}

// ---- errors: each is typed, and the server keeps serving ----

TEST_F(Calls, AThrowingMethodRaisesRemoteErrorNamingTheType) {
  auto maths = manager.create<Maths>("Maths");
  try {
    maths.fail_custom("it broke");
    FAIL() << "no exception";
  } catch (const zmanager::RemoteError& e) {
    EXPECT_EQ(e.type(), "test::CustomFailure");
    EXPECT_EQ(e.message(), "it broke");
    EXPECT_EQ(e.method(), "fail_custom");
  }
  EXPECT_EQ(maths.add(1, 1), 2);
}

TEST_F(Calls, ZmanagerErrorsThrownByMethodsArriveAsTheSameType) {
  auto maths = manager.create<Maths>("Maths");
  EXPECT_THROW(maths.fail_key("k"), zmanager::KeyError);
  EXPECT_THROW(maths.fail_value(), zmanager::ValueError);
  EXPECT_EQ(maths.add(2, 2), 4);
}

TEST_F(Calls, UnexposedAndUnknownMethodsRaiseAttributeError) {
  auto restricted = manager.create<Maths>("RestrictedMaths");
  EXPECT_EQ(restricted.add(1, 2), 3);
  EXPECT_THROW(restricted.greet("x"), zmanager::AttributeError);
  EXPECT_THROW(restricted.call<void>("no_such_method"), zmanager::AttributeError);
  EXPECT_THROW(manager.create<Maths>("NoSuchType"), zmanager::AttributeError);
  EXPECT_EQ(restricted.mul(2, 3), 6);
}

TEST_F(Calls, WrongArityOrArgumentTypesRaiseTypeError) {
  auto maths = manager.create<Maths>("Maths");
  try {
    maths.call<int>("add", 1);
    FAIL() << "no exception";
  } catch (const zmanager::TypeError& e) {
    EXPECT_NE(std::string(e.what()).find("Maths.add() takes 2 arguments (1 given)"),
              std::string::npos)
        << e.what();
  }
  try {
    maths.call<int>("add", std::string("one"), 2);
    FAIL() << "no exception";
  } catch (const zmanager::TypeError& e) {
    EXPECT_NE(std::string(e.what()).find("Maths.add() argument 1: expected int, got str"),
              std::string::npos)
        << e.what();
  }
  try {
    maths.call<int>("add", 1, 2.5);
    FAIL() << "no exception";
  } catch (const zmanager::TypeError& e) {
    EXPECT_NE(std::string(e.what()).find("Maths.add() argument 2: expected int, got float"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(maths.call<std::string>("add", 1, 2), zmanager::TypeError);  // result type
  EXPECT_THROW(manager.create<Counter>("Counter"), zmanager::TypeError);    // factory arity
  EXPECT_EQ(maths.add(5, 5), 10);
}

TEST_F(Calls, AnUnknownObjectRaisesKeyError) {
  auto channel = zmanager::connect({manager.address(), manager.authkey()});
  zmanager::DynamicProxy ghost(
      std::make_shared<zmanager::detail::ObjectRef>(channel, 987654, "Maths"));
  EXPECT_THROW(ghost.call<int>("add", 1, 2), zmanager::KeyError);
}

TEST_F(Calls, AnEmptyProxyRefusesCalls) {
  zmanager::Proxy<Maths> empty;
  EXPECT_FALSE(empty);
  EXPECT_THROW(empty.add(1, 2), zmanager::Error);
}

}  // namespace
