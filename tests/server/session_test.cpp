// Every client has a session; when it ends, what the client held is released: at once when the
// client says goodbye, after the session ttl when it dies without a word.
#include <gtest/gtest.h>

#include <csignal>

#include "server_process.hpp"
#include "timing.hpp"

using namespace std::chrono_literals;

namespace {

// A server whose sessions expire one second after their client's last heartbeat.
test::ServerProcess start_with_short_lease() {
  zmanager::ServerOptions options;
  options.heartbeat_interval = 200ms;
  options.session_ttl = 1000ms;
  return test::ServerProcess::start(options);
}

TEST(Sessions, AKilledClientsObjectsAreReleasedWhenItsSessionExpires) {
  auto server = start_with_short_lease();
  auto observer = server.connect();
  std::uint64_t before = test::objects_of(*observer, "Counter");  // the registered shared counter

  auto client = test::Child::spawn(
      {ZMANAGER_TEST_CLIENT, server.address, server.authkey, "hold-counters", "3"});
  ASSERT_EQ(client.read_line(), "ready");
  EXPECT_EQ(test::objects_of(*observer, "Counter"), before + 3);
  client.signal(SIGKILL);
  ASSERT_EQ(client.wait(), 128 + SIGKILL);
  auto killed = std::chrono::steady_clock::now();

  ASSERT_TRUE(
      test::eventually([&] { return test::objects_of(*observer, "Counter") == before; }, 10s))
      << "objects of a dead client were kept";
  EXPECT_GE(std::chrono::steady_clock::now() - killed, 500ms) << "released before the ttl";
  EXPECT_GE(observer->stats().expired_sessions, 1u);
}

TEST(Sessions, AClientThatExitsCleanlyReleasesAtOnce) {
  zmanager::ServerOptions options;
  options.session_ttl = 60s;  // so that only the goodbye can explain a prompt release
  auto server = test::ServerProcess::start(options);
  auto observer = server.connect();
  std::uint64_t before = test::objects_of(*observer, "Counter");
  auto client = test::Child::spawn(
      {ZMANAGER_TEST_CLIENT, server.address, server.authkey, "create-counters", "5"});
  ASSERT_EQ(client.wait(), 0);
  EXPECT_TRUE(
      test::eventually([&] { return test::objects_of(*observer, "Counter") == before; }, 10s));
  EXPECT_EQ(observer->stats().expired_sessions, 0u);
}

TEST(Sessions, AnIdleClientStaysAliveThroughHeartbeats) {
  zmanager::ServerOptions options;
  options.heartbeat_interval = 100ms;
  options.session_ttl = 500ms;
  auto server = test::ServerProcess::start(options);
  auto client = server.connect();
  auto counter = client->create<Counter>("Counter", 7);
  // Idle for several ttls; only the client's heartbeats keep its session.
  std::this_thread::sleep_for(2s);
  EXPECT_EQ(counter.get(), 7);
  EXPECT_EQ(client->stats().expired_sessions, 0u);
}

TEST(Sessions, AUserClassHearsOfAKilledClientsSessionThroughItsHook) {
  auto server = start_with_short_lease();
  auto observer = server.connect();
  auto roster = observer->get_shared<Roster>("roster");
  auto client = test::Child::spawn(
      {ZMANAGER_TEST_CLIENT, server.address, server.authkey, "join-roster", "0"});
  ASSERT_EQ(client.read_line(), "ready");
  EXPECT_EQ(roster.join(), 2u);  // the observer too
  client.signal(SIGKILL);
  ASSERT_EQ(client.wait(), 128 + SIGKILL);
  ASSERT_TRUE(test::eventually([&] { return roster.present() == 1; }, 10s))
      << "on_session_end was not run for the dead client";
}

}  // namespace
