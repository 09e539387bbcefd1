// Pipe: values between two ends, across a fork, one-way ends, a closed peer, and bytes on the
// descriptor that are not a message.
#include <gtest/gtest.h>

#include <sys/socket.h>
#include <unistd.h>

#include <map>

#include "process.hpp"
#include "zmanager/zmanager.hpp"

namespace {

using namespace std::chrono_literals;

TEST(Pipe, EndsSendAndReceiveWholeValuesBothWays) {
  auto [parent, child] = zmanager::Pipe(true);
  child.send(std::vector<std::string>{"hi!! I am C++"});
  EXPECT_EQ(parent.recv<std::vector<std::string>>(), std::vector<std::string>{"hi!! I am C++"});
  parent.send(std::map<std::string, double>{{"pi", 3.14}});
  parent.send(zmanager::Bytes("raw"));
  EXPECT_EQ((child.recv<std::map<std::string, double>>().at("pi")), 3.14);
  EXPECT_EQ(child.recv<zmanager::Bytes>(), zmanager::Bytes("raw"));
}

TEST(Pipe, PollSaysWhetherAValueIsWaiting) {
  auto [a, b] = zmanager::Pipe();
  EXPECT_FALSE(a.poll());
  EXPECT_FALSE(a.poll(10ms));
  b.send(7);
  EXPECT_TRUE(a.poll(1s));
  EXPECT_EQ(a.recv<int>(), 7);
  EXPECT_FALSE(a.poll());
}

TEST(Pipe, AForkedChildAndItsParentTalk) {
  auto [here, there] = zmanager::Pipe();
  zmanager::Bytes big(std::size_t{3} << 20);
  for (std::size_t i = 0; i < big.size(); i += 4096) big.data()[i] = std::byte(i >> 12);
  auto child = test::Child::fork([&, &there = there] {
    auto question = there.recv<std::string>();
    if (question != "how big?") return 2;
    there.send(big);
    return there.recv<std::string>() == "thanks" ? 0 : 3;
  });
  there.close();  // the child's copy is the one in use
  here.send(std::string("how big?"));
  ASSERT_TRUE(here.poll(30s));
  EXPECT_EQ(here.recv<zmanager::Bytes>(), big);
  here.send(std::string("thanks"));
  EXPECT_EQ(child.wait(30s), 0);
  // The child exited: its end is closed.
  ASSERT_TRUE(here.poll(30s));
  EXPECT_THROW(here.recv<int>(), zmanager::EOFError);
}

TEST(Pipe, AClosedPeerIsAnErrorNotAHang) {
  auto [a, b] = zmanager::Pipe();
  b.send(1);
  b.close();
  EXPECT_EQ(a.recv<int>(), 1);  // what was sent before the close still arrives
  EXPECT_TRUE(a.poll());
  EXPECT_THROW(a.recv<int>(), zmanager::EOFError);
  EXPECT_THROW(a.send(2), zmanager::BrokenPipeError);
  EXPECT_THROW(b.send(3), zmanager::OSError);  // this end itself is closed
}

TEST(Pipe, OneWayPipesHaveAReadingEndAndASendingEnd) {
  auto [reader, writer] = zmanager::Pipe(false);
  EXPECT_TRUE(reader.readable());
  EXPECT_FALSE(reader.writable());
  EXPECT_FALSE(writer.readable());
  writer.send(std::string("one way"));
  EXPECT_EQ(reader.recv<std::string>(), "one way");
  EXPECT_THROW(reader.send(1), zmanager::OSError);
  EXPECT_THROW(writer.recv<int>(), zmanager::OSError);
  EXPECT_THROW(writer.poll(), zmanager::OSError);
}

TEST(Pipe, AValueOfAnotherTypeIsATypeErrorAndTheNextStillArrives) {
  auto [a, b] = zmanager::Pipe();
  b.send(std::string("text"));
  b.send(5);
  EXPECT_THROW(a.recv<int>(), zmanager::TypeError);
  EXPECT_EQ(a.recv<int>(), 5);
}

TEST(Pipe, BytesThatAreNotAMessageAreRefused) {
  struct Header {
    std::uint64_t body;
    std::uint32_t blobs, zero;
  };
  {  // a body declared far over the bound: refused before anything is allocated
    auto [a, b] = zmanager::Pipe();
    Header h{std::uint64_t{1} << 40, 0, 0};
    ASSERT_EQ(::write(b.fd(), &h, sizeof h), static_cast<ssize_t>(sizeof h));
    EXPECT_THROW(a.recv<int>(), zmanager::ProtocolError);
    EXPECT_TRUE(a.closed());  // out of step: closed rather than read on
  }
  {  // a body that is not msgpack
    auto [a, b] = zmanager::Pipe();
    Header h{2, 0, 0};
    ASSERT_EQ(::write(b.fd(), &h, sizeof h), static_cast<ssize_t>(sizeof h));
    ASSERT_EQ(::write(b.fd(), "\xc1\xc1", 2), 2);  // 0xc1 is never used in msgpack
    EXPECT_THROW(a.recv<int>(), zmanager::ProtocolError);
  }
  {  // too many bytes values, and a truncated message
    auto [a, b] = zmanager::Pipe();
    Header h{1, 1'000'000, 0};
    ASSERT_EQ(::write(b.fd(), &h, sizeof h), static_cast<ssize_t>(sizeof h));
    EXPECT_THROW(a.recv<int>(), zmanager::ProtocolError);
    auto [c, d] = zmanager::Pipe();
    Header t{100, 0, 0};
    ASSERT_EQ(::write(d.fd(), &t, sizeof t), static_cast<ssize_t>(sizeof t));
    d.close();
    EXPECT_THROW(c.recv<int>(), zmanager::EOFError);
  }
}

}  // namespace
