// The same-host transport (ServerOptions::local_address, docs/protocol.md 1.1): clients on the
// server's host connect to a Unix socket that the server's poll loop reads beside its ZeroMQ
// socket. They share objects with ZeroMQ clients; a connection that closes ends its session at
// once; bad input on one connection costs only that connection.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <fstream>
#include <thread>

#include "raw_stream.hpp"
#include "server_process.hpp"
#include "timing.hpp"

using namespace std::chrono_literals;

namespace {

using test::RawStream;

TEST(LocalTransport, UnixAndZeroMqClientsShareObjects) {
  auto server = test::ServerProcess::start_with_local_address();
  auto local = server.connect(server.local_address);
  auto remote = server.connect();
  auto here = local->get_shared<Counter>("shared_counter");
  auto there = remote->get_shared<Counter>("shared_counter");
  EXPECT_EQ(here.increment(5), 5);
  EXPECT_EQ(there.increment(2), 7);
  EXPECT_EQ(here.get(), 7);

  // Many calls in flight on one connection, each answered with its own result.
  auto maths = local->create<Maths>("Maths");
  std::vector<zmanager::Future<int>> window;
  for (int i = 0; i < 1000; ++i) window.push_back(maths.async().add(i, 1000));
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(window[static_cast<std::size_t>(i)].wait_for(20s));
    ASSERT_EQ(window[static_cast<std::size_t>(i)].get(), i + 1000);
  }
  // Bytes larger than a socket's buffer, both ways.
  zmanager::Bytes big(3 << 20);
  for (std::size_t i = 0; i < big.size(); ++i) big.data()[i] = static_cast<std::byte>(i % 251);
  auto reversed = maths.reverse(big);
  ASSERT_EQ(reversed.size(), big.size());
  EXPECT_EQ(reversed.data()[0], big.data()[big.size() - 1]);
  EXPECT_EQ(reversed.data()[big.size() - 1], big.data()[0]);
  EXPECT_EQ(maths.length(reversed), big.size());
}

TEST(LocalTransport, AKilledClientsSessionEndsAtOnceWithItsConnection) {
  zmanager::ServerOptions options;
  options.session_ttl = 60s;  // so that only the closed connection can explain a prompt release
  auto server = test::ServerProcess::start_with_local_address(options);
  auto observer = server.connect();
  std::uint64_t before = test::objects_of(*observer, "Counter");
  auto client = test::Child::spawn(
      {ZMANAGER_TEST_CLIENT, server.local_address, server.authkey, "hold-counters", "3"});
  ASSERT_EQ(client.read_line(), "ready");
  EXPECT_EQ(test::objects_of(*observer, "Counter"), before + 3);
  client.signal(SIGKILL);
  ASSERT_EQ(client.wait(), 128 + SIGKILL);
  EXPECT_TRUE(
      test::eventually([&] { return test::objects_of(*observer, "Counter") == before; }, 10s))
      << "the killed client's objects were kept";
  EXPECT_EQ(observer->stats().expired_sessions, 0u) << "ended by its connection, not by its ttl";
}

TEST(LocalTransport, AServerCanListenOnAUnixSocketOnly) {
  zmanager::ServerOptions options;
  options.address = test::abstract_unix_address("only");
  auto server = test::ServerProcess::start(options);
  EXPECT_EQ(server.address, options.address);
  auto client = server.connect();
  EXPECT_EQ(client->create<Maths>("Maths").add(20, 22), 42);
}

TEST(LocalTransport, ASocketFileLeftByADeadServerIsReplacedAndALiveOneIsNot) {
  const std::string path = "/tmp/zmanager-test-" + std::to_string(::getpid()) + ".sock";
  zmanager::ServerOptions options;
  options.local_address = "unix://" + path;
  {
    auto first = test::ServerProcess::start(options);
    ASSERT_EQ(first.connect(first.local_address)->create<Maths>("Maths").add(1, 2), 3);
    try {
      options.authkey = "k";
      zmanager::Server second(zmanager::Registry{}, options);
      ADD_FAILURE() << "a second server took the socket of a live one";
    } catch (const zmanager::ConnectionError& e) {
      EXPECT_NE(std::string(e.what()).find("another server is listening"), std::string::npos)
          << e.what();
    }
    first.child.signal(SIGKILL);
    ASSERT_EQ(first.child.wait(10s), 128 + SIGKILL);
  }
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0) << "a killed server leaves its socket file";
  {
    auto again = test::ServerProcess::start(options);
    auto client = again.connect(again.local_address);
    EXPECT_EQ(client->create<Maths>("Maths").add(2, 3), 5);
    client->shutdown_server();
    EXPECT_EQ(again.child.wait(10s), 0);
  }
  EXPECT_NE(::stat(path.c_str(), &st), 0) << "a server that stops removes its socket file";

  std::ofstream(path) << "not a socket";
  try {
    zmanager::Server third(zmanager::Registry{}, options);
    ADD_FAILURE() << "a server replaced a regular file";
  } catch (const zmanager::ConnectionError& e) {
    EXPECT_NE(std::string(e.what()).find("not a socket"), std::string::npos) << e.what();
  }
  ::unlink(path.c_str());
}

TEST(LocalTransport, AnAddressThatIsNotUnixIsAValueError) {
  zmanager::ServerOptions options;
  options.authkey = "k";
  options.local_address = "tcp://127.0.0.1:0";
  EXPECT_THROW(zmanager::Server(zmanager::Registry{}, options), zmanager::ValueError);
  options.local_address = "unix://relative";
  EXPECT_THROW(zmanager::Server(zmanager::Registry{}, options), zmanager::ValueError);
  EXPECT_THROW(zmanager::connect({.address = "unix://", .authkey = "k"}), zmanager::ValueError);
}

TEST(LocalTransport, AMessageOverALimitIsRefusedAndTheConnectionStaysInStep) {
  zmanager::ServerOptions options;
  options.max_body_bytes = 1024;
  auto server = test::ServerProcess::start_with_local_address(options);
  RawStream raw(server.local_address);
  std::string body = "\x96\x05\x4d";  // [5, 77, ...: a CALL's start
  body.resize(4000, 'x');
  raw.write(RawStream::message(body));
  raw.write(RawStream::hello());
  raw.expect_refused_then_challenge("limit", "LimitError");
  EXPECT_GE(server.connect()->stats().limits_hit["message"], 1u);
}

TEST(LocalTransport, AConnectionThatSendsWhatIsNotAMessageIsClosedAndOthersCarryOn) {
  auto server = test::ServerProcess::start_with_local_address();
  auto client = server.connect(server.local_address);
  auto counter = client->get_shared<Counter>("shared_counter");
  EXPECT_EQ(counter.increment(1), 1);
  RawStream raw(server.local_address);
  raw.write(RawStream::message("abc", /*reserved=*/1));
  EXPECT_TRUE(raw.closed_by_server());
  EXPECT_EQ(counter.increment(1), 2);
  EXPECT_GE(client->stats().rejected, 1u);
}

TEST(LocalTransport, ManyConnectionsAtOnceEachGetTheirOwnReplies) {
  auto server = test::ServerProcess::start_with_local_address();
  constexpr int kClients = 24;
  std::vector<std::unique_ptr<zmanager::BaseManager>> clients;
  std::vector<zmanager::Proxy<Mailbox>> mailboxes;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(server.connect(server.local_address));
    mailboxes.push_back(clients.back()->create<Mailbox>("Mailbox"));
  }
  // Every client parks a get; calls on the other connections go through meanwhile; then each
  // get is answered.
  std::vector<zmanager::Future<std::string>> gets;
  for (auto& m : mailboxes) gets.push_back(m.async().get(20000));
  for (int i = 0; i < kClients; ++i) {
    auto& other = clients[static_cast<std::size_t>((i + 1) % kClients)];
    auto maths = other->create<Maths>("Maths");
    EXPECT_EQ(maths.add(i, 1), i + 1);
    mailboxes[static_cast<std::size_t>(i)].post("letter " + std::to_string(i));
  }
  for (int i = 0; i < kClients; ++i) {
    ASSERT_TRUE(gets[static_cast<std::size_t>(i)].wait_for(20s));
    EXPECT_EQ(gets[static_cast<std::size_t>(i)].get(), "letter " + std::to_string(i));
  }
}

}  // namespace
