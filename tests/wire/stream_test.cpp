// Messages on a byte stream, the same-host transport's framing (wire/src/stream.cpp,
// docs/protocol.md 1.1): written by a StreamWriter into a real socket pair and read back by a
// StreamReader, whole, in order, with the limits checked before anything is allocated.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sys/mman.h>

#include <cstring>
#include <map>
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
TEST(Stream, ABlobLengthNearTwoToThe63IsRefusedNotAllocated) {
  zmanager::wire::Limits limits;
  StreamReader reader(limits);
  StreamInput in;
  // The largest length there is: the top bit says "in a segment" (1.2).
  std::string stream = header(3, 2) + "\x96\x05\x4d" + length(8) + "12345678" +
                       length(~zmanager::wire::kInSegmentBit) + header(3, 0) + "end";
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

// ---- shared segments (docs/protocol.md 1.2) ----

using zmanager::wire::SegmentMapping;
using zmanager::wire::StreamKind;

/// A client's side of the segments, as small as the protocol allows: maps what MAP passes and
/// copies a blob out of its segment.
struct MappingEndpoint : zmanager::wire::SegmentEndpoint {
  bool takes_descriptors() const override { return true; }
  void on_descriptors(std::span<const int> fds) override {
    descriptors.insert(descriptors.end(), fds.begin(), fds.end());
  }
  void on_control(StreamKind kind, std::string_view body) override {
    controls.push_back(kind);
    if (kind != StreamKind::kMap) return;
    for (const auto& segment : zmanager::wire::decode_segment_sizes(body)) {
      mapped.emplace(segment.id, SegmentMapping::adopt(descriptors.front(), segment.size));
      descriptors.erase(descriptors.begin());
    }
  }
  zmq::message_t frame_in(std::uint64_t segment, std::uint64_t offset,
                          std::uint64_t length) override {
    if (refuse) throw zmanager::ValueError("segment " + std::to_string(segment) + " refused");
    const auto& memory = mapped.at(segment);
    EXPECT_LE(offset + length, memory.size());
    return zmq::message_t(memory.data() + offset, static_cast<std::size_t>(length));
  }
  std::vector<int> descriptors;
  std::map<std::uint64_t, SegmentMapping> mapped;
  std::vector<StreamKind> controls;
  bool refuse = false;
};

TEST(StreamSegments, ADescriptorAndABlobInItsSegmentCrossAsTheProtocolSays) {
  SocketPair pair;
  StreamWriter writer;
  zmanager::wire::Limits limits;
  MappingEndpoint endpoint;
  StreamReader reader(limits, &endpoint);
  auto segment = SegmentMapping::create(256 * 1024);
  std::string blob(100 * 1000, '\0');
  for (std::size_t i = 0; i < blob.size(); ++i) blob[i] = static_cast<char>(i * 7);
  std::memcpy(segment.data() + 4096, blob.data(), blob.size());
  const zmanager::wire::SegmentSize known{42, segment.size()};
  writer.push_control(StreamKind::kMap, zmanager::wire::encode_segment_sizes({&known, 1}),
                      {segment.fd()});
  writer.push(message("before"));
  // The placed frame's own bytes are not sent: its place is.
  const StreamWriter::Placement placed{1, 42, 4096, blob.size()};
  writer.push(message("in a segment", {"these bytes do not travel"}), {&placed, 1});
  writer.push(message("after", {"small"}));
  auto in = transfer(pair, writer, reader, 3);
  ASSERT_EQ(in.messages.size(), 3u);
  EXPECT_EQ(endpoint.controls, std::vector<StreamKind>{StreamKind::kMap});
  ASSERT_EQ(endpoint.mapped.count(42), 1u);
  EXPECT_NE(endpoint.mapped.at(42).data(), segment.data()) << "mapped again, in the reader";
  EXPECT_EQ(text(in.messages[0][0]), "before");
  ASSERT_EQ(in.messages[1].size(), 2u);
  EXPECT_EQ(text(in.messages[1][0]), "in a segment");
  EXPECT_EQ(text(in.messages[1][1]), blob);
  EXPECT_EQ(text(in.messages[2][1]), "small");
}

TEST(StreamSegments, ABlobFrameItsEndpointRefusesIsReadPastAndTheNextMessageArrives) {
  SocketPair pair;
  StreamWriter writer;
  zmanager::wire::Limits limits;
  MappingEndpoint endpoint;
  endpoint.refuse = true;
  StreamReader reader(limits, &endpoint);
  const StreamWriter::Placement placed{1, 9, 0, 1 << 20};
  writer.push(message(call_body(40), {""}), {&placed, 1});
  writer.push(message("next"));
  auto in = transfer(pair, writer, reader, 2);
  ASSERT_EQ(in.refused.size(), 1u);
  EXPECT_EQ(in.refused[0].request_id, 77u);
  EXPECT_FALSE(in.refused[0].over_limit);
  EXPECT_NE(in.refused[0].why.find("segment 9 refused"), std::string::npos);
  ASSERT_EQ(in.messages.size(), 1u);
  EXPECT_EQ(text(in.messages[0][0]), "next");
}

TEST(StreamSegments, WithoutAnEndpointTheTransportsOwnMessagesAndPlacedFramesAreMalformed) {
  zmanager::wire::Limits limits;
  {
    StreamReader reader(limits);
    StreamInput in;
    const std::string lease = zmanager::wire::encode_lease({1, 1});
    EXPECT_THROW(reader.feed((header(lease.size(), 0, 3) + lease).data(), 16 + lease.size(), in),
                 zmanager::ProtocolError);
  }
  {
    StreamReader reader(limits);
    StreamInput in;
    const std::string bytes =
        header(2, 1) + "ab" + length(10 | zmanager::wire::kInSegmentBit) + length(1) + length(0);
    EXPECT_THROW(reader.feed(bytes.data(), bytes.size(), in), zmanager::ProtocolError);
  }
  {  // with one: a control message with blob frames, or too long, or of an unknown kind
    MappingEndpoint endpoint;
    for (const std::string& bad :
         {header(3, 1, 1) + "abc", header(64 * 1024, 0, 2), header(0, 0, 5)}) {
      StreamReader reader(limits, &endpoint);
      StreamInput in;
      EXPECT_THROW(reader.feed(bad.data(), bad.size(), in), zmanager::ProtocolError);
    }
  }
}

TEST(StreamSegments, OnlyASealedMemoryFileOfTheSizeSaidIsMapped) {
  auto good = SegmentMapping::create(64 * 1024);
  EXPECT_THROW(SegmentMapping::adopt(::dup(good.fd()), 128 * 1024), zmanager::ProtocolError);
  EXPECT_NO_THROW(SegmentMapping::adopt(::dup(good.fd()), 64 * 1024));
  const int unsealed = ::memfd_create("unsealed", MFD_CLOEXEC);
  ASSERT_GE(unsealed, 0);
  ASSERT_EQ(::ftruncate(unsealed, 64 * 1024), 0);
  EXPECT_THROW(SegmentMapping::adopt(unsealed, 64 * 1024), zmanager::ProtocolError);
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  ::close(pipe_fds[1]);
  EXPECT_THROW(SegmentMapping::adopt(pipe_fds[0], 64 * 1024), zmanager::ProtocolError);
}

TEST(StreamSegments, ControlBodiesAreReadOrRefusedWithAProtocolError) {
  const std::uint64_t ids[] = {1, 2, 99};
  EXPECT_EQ(zmanager::wire::decode_segment_ids(zmanager::wire::encode_segment_ids(ids)),
            std::vector<std::uint64_t>(std::begin(ids), std::end(ids)));
  auto lease = zmanager::wire::decode_lease(zmanager::wire::encode_lease({4, 1 << 20}));
  EXPECT_EQ(lease.count, 4u);
  EXPECT_EQ(lease.min_size, 1u << 20);
  const zmanager::wire::SegmentSize sizes[] = {{3, 65536}};
  auto back = zmanager::wire::decode_segment_sizes(zmanager::wire::encode_segment_sizes(sizes));
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].size, 65536u);
  // Not an array; an id that is not an integer; a MAP entry that is not a pair; too many.
  EXPECT_THROW(zmanager::wire::decode_segment_ids("\x05"), zmanager::ProtocolError);
  EXPECT_THROW(zmanager::wire::decode_segment_ids("\x91\xa1x"), zmanager::ProtocolError);
  EXPECT_THROW(zmanager::wire::decode_segment_sizes("\x91\x01"), zmanager::ProtocolError);
  EXPECT_THROW(zmanager::wire::decode_lease("\x91\x01"), zmanager::ProtocolError);
  std::vector<std::uint64_t> many(2000, 1);
  EXPECT_THROW(zmanager::wire::decode_segment_ids(zmanager::wire::encode_segment_ids(many)),
               zmanager::ProtocolError);
  // A RELEASE of more than a body may name goes as several, each within the bound.
  std::vector<std::uint64_t> owed(2500);
  std::iota(owed.begin(), owed.end(), 1);
  std::vector<std::uint64_t> released;
  const auto bodies = zmanager::wire::encode_segment_id_lists(owed);
  EXPECT_EQ(bodies.size(), 3u);
  for (const auto& body : bodies) {
    auto part = zmanager::wire::decode_segment_ids(body);
    released.insert(released.end(), part.begin(), part.end());
  }
  EXPECT_EQ(released, owed);
  EXPECT_TRUE(zmanager::wire::encode_segment_id_lists({}).empty());
  EXPECT_EQ(zmanager::wire::segment_size_for(1), 64u * 1024);
  EXPECT_EQ(zmanager::wire::segment_size_for(1 << 20), 1u << 20);
  EXPECT_EQ(zmanager::wire::segment_size_for((1 << 20) + 1), 2u << 20);
}

TEST(StreamSegments, ABrokenConnectionsQueueKeepsOnlyPlainMessagesNotBegun) {
  SocketPair pair;
  StreamWriter writer;
  writer.push(message("plain one"));
  const StreamWriter::Placement placed{1, 5, 0, 70000};
  writer.push(message("placed", {""}), {&placed, 1});
  writer.push_control(StreamKind::kRelease, zmanager::wire::encode_segment_ids({}));
  writer.push(message("plain two"));
  writer.drop(/*keep_whole=*/true);
  zmanager::wire::Limits limits;
  StreamReader reader(limits);  // no endpoint: anything but plain messages would throw
  auto in = transfer(pair, writer, reader, 2);
  ASSERT_EQ(in.messages.size(), 2u);
  EXPECT_EQ(text(in.messages[0][0]), "plain one");
  EXPECT_EQ(text(in.messages[1][0]), "plain two");
}

}  // namespace
