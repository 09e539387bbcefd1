// A client outlives its server: when the server is killed and started again at the same address,
// the client opens a new session on its own; proxies to shared objects (register_shared) find
// their object again, proxies to anything else raise StaleProxyError naming it, a call the new
// server refused unread is sent again, a call that was in flight raises ConnectionError, and a
// server that stays down ends in ConnectionError once the retry budget is spent. Python's
// managers end every proxy with BrokenPipeError here.
// Each test runs over ZeroMQ (tcp://) and over the same-host transport (unix://), whose client
// hears at once that the server's end closed instead of waiting out the ttl.
#include <gtest/gtest.h>

#include <unistd.h>

#include <csignal>
#include <string>

#include "process.hpp"
#include "test_types.hpp"
#include "timing.hpp"

using namespace std::chrono_literals;

namespace {

constexpr auto kTtl = 1500ms;  // short, so that silence is noticed quickly
const std::string kKey = "reconnect-key";

/// The test server program in its own process, killed and started again at one address.
class RestartableServer {
 public:
  explicit RestartableServer(const std::string& address) { start(address); }
  void kill() {
    child_->signal(SIGKILL);
    EXPECT_EQ(child_->wait(10s), 128 + SIGKILL);
    child_.reset();
  }
  void restart(bool with_shared_objects = true) { start(address_, with_shared_objects); }
  const std::string& address() const { return address_; }

 private:
  void start(const std::string& address, bool with_shared_objects = true) {
    std::vector<std::string> argv{ZMANAGER_TEST_SERVER, kKey,   address, "--session-ttl", "1500ms",
                                  "--heartbeat",        "100ms"};
    if (!with_shared_objects) argv.push_back("--no-shared");
    child_.emplace(test::Child::spawn(argv));
    auto line = child_->read_line(30s);
    ASSERT_TRUE(line) << "the server did not start";
    address_ = *line;
  }
  std::optional<test::Child> child_;
  std::string address_;
};

/// A fresh address of the transport each test runs over.
std::string address_for(const std::string& scheme) {
  static int serial = 0;
  if (scheme == "unix")  // abstract: no file left behind by a killed server
    return "unix://@zmanager-reconnect-" + std::to_string(::getpid()) + "-" +
           std::to_string(++serial);
  return "tcp://127.0.0.1:0";
}

class Reconnect : public ::testing::TestWithParam<std::string> {
 protected:
  std::unique_ptr<zmanager::BaseManager> connect(zmanager::ReconnectOptions reconnect = {
                                                     .budget = 30s, .first_delay = 50ms}) {
    auto m = std::make_unique<zmanager::BaseManager>(zmanager::ManagerOptions{
        .address = server.address(), .authkey = kKey, .reconnect = reconnect});
    test::register_all(*m);
    m->connect();
    return m;
  }
  RestartableServer server{address_for(GetParam())};
};

TEST_P(Reconnect, SharedObjectsWorkAgainAfterTheServerRestartsWithoutNewProxies) {
  auto m = connect();
  auto counter = m->get_shared<Counter>("shared_counter");
  auto copy = counter;  // copies share one reference: it is found again once for all of them
  EXPECT_EQ(counter.increment(5), 5);
  server.kill();
  server.restart();
  // The new server's counter starts again at 0: nothing persists, the proxy finds it by name.
  EXPECT_EQ(counter.increment(1), 1);
  EXPECT_EQ(copy.increment(1), 2);
  EXPECT_EQ(m->get_shared<Counter>("shared_counter").get(), 2);
  EXPECT_EQ(m->stats().sessions, 1u) << "one new session, not one per proxy";
}

TEST_P(Reconnect, AProxyToAnObjectOfTheOldServerRaisesStaleProxyErrorNamingIt) {
  auto m = connect();
  auto mine = m->create<Counter>("Counter", 7);
  const std::uint64_t old_id = mine.id();
  server.kill();
  server.restart();
  // The new server numbers its objects from 1 again: make one with the stale proxy's id, which
  // the stale proxy must never reach.
  std::vector<zmanager::Proxy<Counter>> made;
  for (int i = 0; i < 100 && (made.empty() || made.back().id() < old_id); ++i)
    made.push_back(m->create<Counter>("Counter", 1000 + i));
  ASSERT_EQ(made.back().id(), old_id);
  try {
    mine.get();
    ADD_FAILURE() << "a proxy of the old server reached an object of the new one";
  } catch (const zmanager::StaleProxyError& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("Counter object " + std::to_string(old_id)), std::string::npos) << what;
    EXPECT_NE(what.find("restarted"), std::string::npos) << what;
  }
  // As an argument too, and a StaleProxyError is a ConnectionError.
  auto holder = m->create<Holder>("Holder");
  auto maths = m->create<Maths>("Maths");
  server.kill();
  server.restart();
  EXPECT_THROW(holder.keep(maths), zmanager::ConnectionError);
  auto new_holder = m->create<Holder>("Holder");
  EXPECT_THROW(new_holder.keep(maths), zmanager::StaleProxyError);
  EXPECT_EQ(m->create<Maths>("Maths").add(2, 2), 4);
}

TEST_P(Reconnect, ACallInFlightWhenTheServerDiesRaisesAndIsNotSentAgain) {
  auto m = connect();
  auto counter = m->get_shared<Counter>("shared_counter");
  auto sleeper = m->create<Sleeper>("Sleeper");
  auto napping = sleeper.async().nap(60000);
  EXPECT_EQ(counter.increment(1), 1);  // the nap has reached the server: it is in flight
  server.kill();
  server.restart();
  ASSERT_TRUE(napping.wait_for(kTtl + 15s)) << "a call in flight to a dead server hung";
  try {
    napping.get();
    ADD_FAILURE() << "a call in flight when the server died returned";
  } catch (const zmanager::StaleProxyError& e) {
    ADD_FAILURE() << "in flight, not stale: " << e.what();
  } catch (const zmanager::ConnectionError& e) {
    EXPECT_NE(std::string(e.what()).find("may or may not have run"), std::string::npos) << e.what();
  }
  EXPECT_EQ(counter.increment(1), 1) << "the restarted server's counter, once";
}

TEST_P(Reconnect, ACallMadeWhileTheServerIsDownWaitsForItAndRunsOnce) {
  auto m = connect();
  auto counter = m->get_shared<Counter>("shared_counter");
  EXPECT_EQ(counter.increment(1), 1);
  server.kill();
  // Down: a new client gets no answer (and meanwhile this one's socket has seen the old
  // connection close, so the call below waits in its queue rather than in a dead connection).
  EXPECT_THROW(zmanager::connect({server.address(), kKey, 300ms}), zmanager::ConnectionError);
  auto waiting = counter.async().increment(10);
  EXPECT_FALSE(waiting.wait_for(200ms)) << "answered with no server";
  server.restart();
  ASSERT_TRUE(waiting.wait_for(20s));
  EXPECT_EQ(waiting.get(), 10) << "sent once to the new server, whose counter starts at 0";
  EXPECT_EQ(counter.get(), 10);
}

TEST_P(Reconnect, AProxyToASharedObjectTheNewServerLacksIsStale) {
  auto m = connect();
  auto counter = m->get_shared<Counter>("shared_counter");
  EXPECT_EQ(counter.increment(1), 1);
  server.kill();
  server.restart(/*with_shared_objects=*/false);
  EXPECT_THROW(counter.get(), zmanager::StaleProxyError);
  EXPECT_EQ(m->create<Maths>("Maths").add(1, 2), 3);
}

TEST_P(Reconnect, AServerThatStaysDownEndsInConnectionErrorOnceTheBudgetIsSpent) {
  constexpr auto kBudget = 1s;
  auto m = connect({.budget = kBudget, .first_delay = 50ms, .max_delay = 200ms});
  auto counter = m->get_shared<Counter>("shared_counter");
  EXPECT_EQ(counter.increment(1), 1);
  server.kill();
  // The silence is noticed within the ttl, then the budget runs; slack for a loaded machine.
  auto waited = test::timed([&] { EXPECT_THROW(counter.increment(1), zmanager::ConnectionError); });
  EXPECT_LT(waited, kTtl + kBudget + 10s);
  // From then on every call fails at once, saying why.
  std::string what;
  auto again = test::timed([&] {
    try {
      counter.get();
    } catch (const zmanager::ConnectionError& e) {
      what = e.what();
    }
  });
  EXPECT_NE(what.find("reconnect budget"), std::string::npos) << what;
  EXPECT_LT(again, 1s);
  EXPECT_THROW(m->create<Maths>("Maths"), zmanager::ConnectionError);
}

TEST_P(Reconnect, WithoutABudgetTheFirstLossIsFinal) {
  auto m = connect({.budget = 0ms});
  auto counter = m->get_shared<Counter>("shared_counter");
  EXPECT_EQ(counter.increment(1), 1);
  server.kill();
  server.restart();
  EXPECT_THROW(counter.increment(1), zmanager::ConnectionError);
  EXPECT_THROW(counter.increment(1), zmanager::ConnectionError);
}

INSTANTIATE_TEST_SUITE_P(Transports, Reconnect, ::testing::Values("tcp", "unix"),
                         [](const auto& info) { return info.param; });

}  // namespace
