// Bounds on what one client may hold — objects, parked calls, sessions — so that it cannot
// exhaust the server for the others: the client over a bound gets LimitError, the refusal is
// counted in stats().limits_hit, and every other client carries on.
#include <gtest/gtest.h>

#include <vector>

#include "server_process.hpp"

using namespace std::chrono_literals;

namespace {

// A test server with the options `set` chooses.
template <class Set>
test::ServerProcess start_with(Set set) {
  zmanager::ServerOptions options;
  set(options);
  return test::ServerProcess::start(options);
}

std::uint64_t hits(zmanager::BaseManager& client, const std::string& limit) {
  return client.stats().limits_hit.at(limit);
}

TEST(Limits, ASessionHoldsAtMostItsShareOfObjects) {
  auto server = start_with([](auto& o) { o.max_objects_per_session = 4; });
  auto greedy = server.connect();
  std::vector<zmanager::Proxy<Counter>> held;
  for (int i = 0; i < 4; ++i) held.push_back(greedy->create<Counter>("Counter", i));
  EXPECT_THROW(greedy->create<Counter>("Counter", 4), zmanager::LimitError);
  EXPECT_EQ(hits(*greedy, "objects_per_session"), 1u);
  auto other = server.connect();
  EXPECT_EQ(other->create<Counter>("Counter", 7).get(), 7) << "another client was refused";
  // A second proxy to an object it holds already is no new object.
  auto again = held[0];
  EXPECT_EQ(again.get(), 0);
  held.pop_back();  // released: room for one more
  EXPECT_EQ(greedy->create<Counter>("Counter", 5).get(), 5);
}

TEST(Limits, ASessionParksAtMostItsShareOfCalls) {
  auto server = start_with([](auto& o) { o.max_waiters_per_session = 3; });
  auto greedy = server.connect();
  auto queue = greedy->create<JobQueue>("JobQueue");
  std::vector<zmanager::Future<std::string>> parked;
  for (int i = 0; i < 3; ++i) parked.push_back(queue.async().get());
  EXPECT_THROW(queue.get(), zmanager::LimitError);
  EXPECT_EQ(hits(*greedy, "waiters_per_session"), 1u);
  // Another client parks its own share on the same queue.
  auto other = server.connect();
  auto same_queue = other->create<JobQueue>("JobQueue");
  auto waiting = same_queue.async().get();
  same_queue.put("theirs");
  ASSERT_TRUE(waiting.wait_for(10s));
  EXPECT_EQ(waiting.get(), "theirs");
  // The refused get took nothing; an answered one frees a place.
  queue.put("a");
  ASSERT_TRUE(parked[0].wait_for(10s));
  EXPECT_EQ(parked[0].get(), "a");
  auto fourth = queue.async().get();
  for (const char* job : {"b", "c", "d"}) queue.put(job);
  ASSERT_TRUE(fourth.wait_for(10s));
  EXPECT_EQ(fourth.get(), "d");
}

TEST(Limits, TheServerHoldsAtMostItsLimitOfSessions) {
  auto server = start_with([](auto& o) { o.max_sessions = 2; });
  auto first = server.connect();
  auto second = server.connect();
  EXPECT_THROW(server.connect(), zmanager::LimitError);
  EXPECT_EQ(hits(*first, "sessions"), 1u);
  EXPECT_EQ(first->stats().sessions, 2u);
  second.reset();  // says goodbye: its place is free at once
  std::unique_ptr<zmanager::BaseManager> third;
  for (int attempt = 0; attempt < 100 && !third; ++attempt) {
    try {
      third = server.connect();
    } catch (const zmanager::LimitError&) {
      std::this_thread::sleep_for(20ms);  // the goodbye is still on its way
    }
  }
  ASSERT_TRUE(third) << "a freed session place was not given to the next client";
  EXPECT_EQ(third->create<Counter>("Counter", 3).get(), 3);
}

TEST(Limits, OversizedMessagesAreCountedAsMessageLimitHits) {
  auto server = start_with([](auto& o) { o.max_body_bytes = 4096; });
  auto client = server.connect();
  auto maths = client->create<Maths>("Maths");
  EXPECT_THROW(maths.greet(std::string(10000, 'x')), zmanager::LimitError);
  EXPECT_EQ(hits(*client, "message"), 1u);
  EXPECT_EQ(maths.greet("ok"), "hello ok");
}

}  // namespace
