// Messages on a byte stream, the same-host transport's framing (wire/src/stream.cpp,
// docs/protocol.md 1.1): written by a StreamWriter into a real socket pair and read back by a
// StreamReader, whole, in order, with the limits checked before anything is allocated.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <numeric>
#include <string>
#include <thread>

#include "zmanager/errors.hpp"
#include "zmanager/wire/stream.hpp"

using namespace std::chrono_literals;
using zmanager::wire::Frames;
using zmanager::wire::StreamInput;
using zmanager::wire::StreamReader;
using zmanager::wire::StreamWriter;

namespace {

class SocketPair {
 public:
  SocketPair() {
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds_) != 0)
      throw std::runtime_error("socketpair failed");
  }
  ~SocketPair() {
    for (int fd : fds_)
      if (fd >= 0) ::close(fd);
  }
  int writer() const { return fds_[0]; }
  int reader() const { return fds_[1]; }
  void close_writer() {
    ::close(fds_[0]);
    fds_[0] = -1;
  }
  void close_reader() {
    ::close(fds_[1]);
    fds_[1] = -1;
  }

 private:
  int fds_[2];
};

Frames message(const std::string& body, const std::vector<std::string>& blobs = {}) {
  Frames frames;
  frames.emplace_back(body.data(), body.size());
  for (const auto& b : blobs) frames.emplace_back(b.data(), b.size());
  return frames;
}

std::string text(const zmq::message_t& frame) {
  return std::string(static_cast<const char*>(frame.data()), frame.size());
}

/// Writes everything queued, and reads on the other end until `count` messages or a deadline.
StreamInput transfer(SocketPair& pair, StreamWriter& writer, StreamReader& reader,
                     std::size_t count) {
  StreamInput in;
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (in.count() < count && std::chrono::steady_clock::now() < deadline) {
    if (!writer.empty()) {
      auto status = writer.write_to(pair.writer());
      EXPECT_NE(status, StreamWriter::Status::kBroken);
    }
    pollfd p{pair.reader(), POLLIN, 0};
    ::poll(&p, 1, 10);
    EXPECT_EQ(reader.read_from(pair.reader(), in, 1 << 20), StreamReader::Status::kOpen);
  }
  return in;
}

std::string header(std::uint64_t body, std::uint32_t blobs, std::uint32_t reserved = 0) {
  std::string h(16, '\0');
  std::memcpy(h.data(), &body, 8);
  std::memcpy(h.data() + 8, &blobs, 4);
  std::memcpy(h.data() + 12, &reserved, 4);
  return h;
}

std::string length(std::uint64_t n) {
  return std::string(reinterpret_cast<const char*>(&n), 8);
}

// The start of a CALL body with request id 77 ([5, 77, ...] as a fixarray of 6), padded.
std::string call_body(std::size_t size) {
  std::string body = "\x96\x05\x4d";
  body.resize(size, 'x');
  return body;
}

TEST(Stream, ManySmallMessagesAndBlobsArriveWholeAndInOrder) {
  SocketPair pair;
  StreamWriter writer;
  zmanager::wire::Limits limits;
  StreamReader reader(limits);
  constexpr int kMessages = 5000;
  for (int i = 0; i < kMessages; ++i) {
    if (i % 100 == 7)
      writer.push(message("with blobs " + std::to_string(i), {"", "b" + std::to_string(i)}));
    else
      writer.push(message("message " + std::to_string(i)));
  }
  auto in = transfer(pair, writer, reader, kMessages);
  ASSERT_EQ(in.messages.size(), std::size_t{kMessages});
  EXPECT_TRUE(in.refused.empty());
  for (int i = 0; i < kMessages; ++i) {
    const auto& m = in.messages[static_cast<std::size_t>(i)];
    if (i % 100 == 7) {
      ASSERT_EQ(m.size(), 3u);
      EXPECT_EQ(text(m[0]), "with blobs " + std::to_string(i));
      EXPECT_EQ(m[1].size(), 0u);
      EXPECT_EQ(text(m[2]), "b" + std::to_string(i));
    } else {
      ASSERT_EQ(m.size(), 1u);
      EXPECT_EQ(text(m[0]), "message " + std::to_string(i));
    }
  }
}

TEST(Stream, ALargeBlobLargerThanTheSocketBufferArrivesIntact) {
  SocketPair pair;
  StreamWriter writer;
  zmanager::wire::Limits limits;
  StreamReader reader(limits);
  std::string big(5 << 20, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 31 + i / 4096);
  writer.push(message("head", {big}));
  writer.push(message("after"));
  auto in = transfer(pair, writer, reader, 2);
  ASSERT_EQ(in.messages.size(), 2u);
  ASSERT_EQ(in.messages[0].size(), 2u);
  EXPECT_TRUE(text(in.messages[0][1]) == big) << "the blob's bytes differ";
  EXPECT_EQ(text(in.messages[1][0]), "after");
}

TEST(Stream, AMessageOverALimitIsReadPastWithItsRequestIdAndTheNextOneStillArrives) {
  zmanager::wire::Limits limits;
  limits.max_body_bytes = 1024;
  limits.max_message_bytes = 4096;
  limits.max_frames = 3;
  StreamReader reader(limits);
  StreamInput in;
  std::string stream;
  stream += header(2000, 0) + call_body(2000);  // body over its limit
  stream += header(10, 3) + call_body(10) + length(1) + "a" + length(1) + "b" + length(1) + "c";
  stream += header(100, 1) + call_body(100) + length(5000) + std::string(5000, 'z');  // total
  stream += header(3, 0) + "end";
  // Fed a few bytes at a time, as a socket may deliver them.
  for (std::size_t at = 0; at < stream.size(); at += 7)
    reader.feed(stream.data() + at, std::min<std::size_t>(7, stream.size() - at), in);
  ASSERT_EQ(in.refused.size(), 3u);
  for (const auto& r : in.refused) EXPECT_EQ(r.request_id, 77u) << r.why;
  EXPECT_NE(in.refused[0].why.find("body of 2000 bytes"), std::string::npos) << in.refused[0].why;
  EXPECT_NE(in.refused[1].why.find("4 frames"), std::string::npos) << in.refused[1].why;
  EXPECT_NE(in.refused[2].why.find("4096"), std::string::npos) << in.refused[2].why;
  ASSERT_EQ(in.messages.size(), 1u);
  EXPECT_EQ(text(in.messages[0][0]), "end");
}

// Found by the fuzzer: a blob length near 2^64 wrapped the running total of the message's size
// past its limit check, and the reader tried to allocate it.
TEST(Stream, ABlobLengthNearTwoToThe64IsRefusedNotAllocated) {
  zmanager::wire::Limits limits;
  StreamReader reader(limits);
  StreamInput in;
  std::string stream = header(3, 2) + "\x96\x05\x4d" + length(8) + "12345678" +
                       length(~std::uint64_t{0}) + header(3, 0) + "end";
  EXPECT_NO_THROW(reader.feed(stream.data(), stream.size(), in));
  ASSERT_EQ(in.refused.size(), 0u) << "still reading past the huge blob";
  EXPECT_EQ(in.messages.size(), 0u);
}

TEST(Stream, AHeaderWithItsReservedFieldSetIsAProtocolError) {
  zmanager::wire::Limits limits;
  StreamReader reader(limits);
  StreamInput in;
  std::string bad = header(3, 0, 1) + "abc";
  EXPECT_THROW(reader.feed(bad.data(), bad.size(), in), zmanager::ProtocolError);
  EXPECT_EQ(in.count(), 0u);
}

TEST(Stream, TheEndOfTheStreamIsReportedAndAMessageCutShortIsDropped) {
  SocketPair pair;
  zmanager::wire::Limits limits;
  StreamReader reader(limits);
  std::string partial = header(3, 0) + "one" + header(100, 0) + "only part of it";
  ASSERT_EQ(::write(pair.writer(), partial.data(), partial.size()),
            static_cast<ssize_t>(partial.size()));
  pair.close_writer();
  StreamInput in;
  EXPECT_EQ(reader.read_from(pair.reader(), in, 100), StreamReader::Status::kOpen);
  EXPECT_EQ(reader.read_from(pair.reader(), in, 100), StreamReader::Status::kClosed);
  ASSERT_EQ(in.messages.size(), 1u);
  EXPECT_EQ(text(in.messages[0][0]), "one");
}

TEST(Stream, WritingToAClosedPeerIsBrokenNotASignal) {
  SocketPair pair;
  pair.close_reader();
  StreamWriter writer;
  writer.push(message("nobody reads this"));
  EXPECT_EQ(writer.write_to(pair.writer()), StreamWriter::Status::kBroken);
}

TEST(Stream, UnixAddressesAreParsedOrRefusedWithAValueError) {
  auto path = zmanager::wire::parse_unix_address("unix:///run/zmanager.sock");
  EXPECT_FALSE(path.abstract);
  EXPECT_EQ(path.path, "/run/zmanager.sock");
  EXPECT_STREQ(path.addr.sun_path, "/run/zmanager.sock");
  auto abstract = zmanager::wire::parse_unix_address("unix://@name");
  EXPECT_TRUE(abstract.abstract);
  EXPECT_EQ(abstract.addr.sun_path[0], '\0');
  EXPECT_EQ(std::string(abstract.addr.sun_path + 1, 4), "name");
  EXPECT_TRUE(zmanager::wire::is_unix_address("unix:///x"));
  EXPECT_FALSE(zmanager::wire::is_unix_address("tcp://127.0.0.1:5000"));
  for (const char* bad : {"unix://", "unix://relative/path", "unix://@", "tcp://127.0.0.1:1"})
    EXPECT_THROW(zmanager::wire::parse_unix_address(bad), zmanager::ValueError) << bad;
  EXPECT_THROW(zmanager::wire::parse_unix_address("unix:///" + std::string(200, 'a')),
               zmanager::ValueError);
}

}  // namespace
