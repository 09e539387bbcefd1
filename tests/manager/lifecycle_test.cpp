// BaseManager's life cycle, as Python has it: start/connect/shutdown, serve_forever and its ways
// to end, the errors for misuse, and the proxies' behaviour once the server is gone.
#include <gtest/gtest.h>

#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <thread>

#include "process.hpp"
#include "test_types.hpp"

using namespace std::chrono_literals;

namespace {

zmanager::ManagerOptions client_of(const zmanager::BaseManager& m) {
  return {.address = m.address(), .authkey = m.authkey(), .connect_timeout = 2s};
}

TEST(Lifecycle, StartResolvesPortZeroAndIsReadyOnReturn) {
  zmanager::BaseManager m;
  test::register_all(m);
  m.start();
  EXPECT_TRUE(m.running());
  EXPECT_TRUE(m.address().starts_with("tcp://127.0.0.1:"));
  EXPECT_FALSE(m.address().ends_with(":0"));
  EXPECT_EQ(m.create<Maths>("Maths").add(1, 2), 3);
}

TEST(Lifecycle, StartTwiceAndStartAfterShutdownAreProcessErrors) {
  zmanager::BaseManager m;
  test::register_all(m);
  m.start();
  EXPECT_THROW(m.start(), zmanager::ProcessError);
  EXPECT_THROW(m.connect(), zmanager::ProcessError);
  m.shutdown();
  EXPECT_FALSE(m.running());
  EXPECT_THROW(m.start(), zmanager::ProcessError);
  m.shutdown();  // idempotent
}

TEST(Lifecycle, CallsAfterShutdownAreTypedErrors) {
  zmanager::BaseManager m;
  test::register_all(m);
  m.start();
  auto maths = m.create<Maths>("Maths");
  m.shutdown();
  EXPECT_THROW(m.create<Maths>("Maths"), zmanager::ProcessError);
  EXPECT_THROW(maths.add(1, 1), zmanager::ConnectionError);
}

TEST(Lifecycle, UsingAManagerNeitherStartedNorConnectedIsAProcessError) {
  zmanager::BaseManager m;
  test::register_all(m);
  EXPECT_THROW(m.create<Maths>("Maths"), zmanager::ProcessError);
}

TEST(Lifecycle, TheDestructorShutsDownTheServerItStarted) {
  std::string address, key;
  {
    zmanager::BaseManager m;
    test::register_all(m);
    m.start();
    address = m.address();
    key = m.authkey();
  }
  EXPECT_THROW(zmanager::connect({address, key, 500ms}), zmanager::ConnectionError);
}

TEST(Lifecycle, ConnectingToNothingFailsWithinTheTimeout) {
  auto start = std::chrono::steady_clock::now();
  zmanager::BaseManager m(
      {.address = "tcp://127.0.0.1:1", .authkey = "k", .connect_timeout = 300ms});
  EXPECT_THROW(m.connect(), zmanager::ConnectionError);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
}

TEST(Lifecycle, AWrongAuthkeyIsAnAuthenticationError) {
  zmanager::BaseManager m({.authkey = "right"});
  test::register_all(m);
  m.start();
  zmanager::BaseManager wrong({.address = m.address(), .authkey = "wrong"});
  EXPECT_THROW(wrong.connect(), zmanager::AuthenticationError);
  zmanager::BaseManager right({.address = m.address(), .authkey = "right"});
  right.connect();
  EXPECT_EQ(right.create<Maths>("Maths").mul(6, 7), 42);
}

// get_server().serve_forever() in its own process, stopped three ways.
class ServeForever : public ::testing::TestWithParam<int> {};

TEST_P(ServeForever, ReturnsOnShutdownRequestOrSignal) {
  int how = GetParam();  // 0: a client's shutdown request; else the signal to send
  auto server = test::Child::fork_reporting([](const auto& report) {
    zmanager::BaseManager m({.authkey = "serve"});
    test::register_all(m);
    auto& s = m.get_server();
    report(s.address());
    s.serve_forever();
    return 0;  // reached only if serve_forever returned
  });
  std::string address = server.read_line().value_or("");
  ASSERT_FALSE(address.empty());
  zmanager::BaseManager client({.address = address, .authkey = "serve"});
  client.connect();
  EXPECT_EQ(client.create<Maths>("Maths").add(2, 2), 4);
  if (how == 0)
    client.shutdown_server();
  else
    server.signal(how);
  EXPECT_EQ(server.wait(20s), 0);
}

INSTANTIATE_TEST_SUITE_P(Lifecycle, ServeForever, ::testing::Values(0, SIGTERM, SIGINT));

TEST(Lifecycle, AddressOfAConnectedManagerIsTheOneGiven) {
  zmanager::BaseManager server;
  test::register_all(server);
  server.start();
  zmanager::BaseManager client(client_of(server));
  client.connect();
  EXPECT_EQ(client.address(), server.address());
  EXPECT_EQ(client.create<Maths>("Maths").add(3, 4), 7);
  client.shutdown();  // a connected manager only disconnects
  EXPECT_EQ(server.create<Maths>("Maths").add(3, 4), 7);
}

TEST(Lifecycle, AServerStartedByAProcessStopsWhenThatProcessDies) {
  auto owner = test::Child::fork_reporting([](const auto& report) {
    zmanager::BaseManager m({.authkey = "orphan"});
    test::register_all(m);
    m.start();
    report(m.address());
    ::pause();  // until killed
    return 0;
  });
  std::string address = owner.read_line().value_or("");
  ASSERT_FALSE(address.empty());
  zmanager::connect({address, "orphan", 5s});  // serving
  owner.signal(SIGKILL);
  EXPECT_EQ(owner.wait(10s), 128 + SIGKILL);
  // The server notices its parent is gone and exits: a connection attempt then gets no answer.
  bool gone = false;
  for (int attempt = 0; attempt < 20 && !gone; ++attempt) {
    try {
      zmanager::connect({address, "orphan", 500ms});
    } catch (const zmanager::ConnectionError&) {
      gone = true;
    }
  }
  EXPECT_TRUE(gone);
}

TEST(Lifecycle, StopHooksRunInTheServerProcessAtEveryShutdown) {
  // Regression: shutdown() closes the lifeline right after the server answers the shutdown
  // request, and the lifeline's watcher then sent SIGTERM, whose default action (restored when
  // serve_forever returned) could kill the server before its stop hooks ran (1 in ~30).
  std::string marker = "/tmp/zmanager_stop_hook_" + std::to_string(::getpid());
  for (int i = 0; i < 20; ++i) {
    std::string path = marker + "_" + std::to_string(i);
    {
      zmanager::BaseManager m;
      // A hook that takes a while, as unlinking many segments does: the kill came meanwhile.
      m.at_server_stop([path, parent = ::getpid()] {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        if (::getpid() != parent) std::fclose(std::fopen(path.c_str(), "w"));
      });
      m.start();
      m.shutdown();
    }
    EXPECT_EQ(::access(path.c_str(), F_OK), 0) << "cycle " << i << ": the hook did not run";
    ::unlink(path.c_str());
  }
}

TEST(Options, DurationsAreReadAsWrittenOnACommandLine) {
  using zmanager::parse_duration;
  EXPECT_EQ(parse_duration("10s"), 10s);
  EXPECT_EQ(parse_duration("500ms"), 500ms);
  EXPECT_EQ(parse_duration("1.5s"), 1500ms);
  EXPECT_EQ(parse_duration("2m"), 120s);
  EXPECT_EQ(parse_duration("1h"), 3600s);
  EXPECT_EQ(parse_duration("3"), 3s) << "a bare number is seconds";
  for (const char* bad : {"", "s", "soon", "10 s", "-5s", "1.2.3s", "10sec", "1e20h"})
    EXPECT_THROW(parse_duration(bad), zmanager::ValueError) << "'" << bad << "'";
}

}  // namespace
