// The shared segments' messages over ZeroMQ (wire/src/segment.cpp, docs/protocol.md 1.3): the
// transport's own frames, the placement of blob frames, OFFER and PROOF read back as written,
// everything else refused with a ProtocolError before it is used; and a segment opened through
// /proc, as a same-host ZeroMQ client opens the server's.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "zmanager/errors.hpp"
#include "zmanager/wire/segment.hpp"

namespace wire = zmanager::wire;

namespace {

std::string view_of(const zmq::message_t& frame) {
  return std::string(frame.to_string_view());
}

zmq::message_t frame_of(const std::string& bytes) {
  return zmq::message_t(bytes.data(), bytes.size());
}

TEST(ZmqSegments, ATransportFrameIsItsMarkItsKindAndItsBody) {
  const auto frame = wire::transport_frame(wire::StreamKind::kLease, wire::encode_lease({2, 4096}));
  ASSERT_TRUE(wire::is_transport_frame(frame));
  EXPECT_EQ(static_cast<unsigned char>(view_of(frame)[0]), 0xc1);
  EXPECT_EQ(static_cast<unsigned char>(view_of(frame)[1]), 3);
  const auto read = wire::read_transport_frame(frame);
  EXPECT_EQ(read.kind, wire::StreamKind::kLease);
  const auto lease = wire::decode_lease(read.body);
  EXPECT_EQ(lease.count, 2u);
  EXPECT_EQ(lease.min_size, 4096u);
  // A message's body is msgpack, which never starts with 0xc1; nor does an empty frame.
  EXPECT_FALSE(wire::is_transport_frame(frame_of("\x96\x05")));
  EXPECT_FALSE(wire::is_transport_frame(zmq::message_t()));
}

TEST(ZmqSegments, AMalformedTransportFrameIsAProtocolError) {
  EXPECT_THROW(wire::read_transport_frame(frame_of("\xc1")), zmanager::ProtocolError);
  EXPECT_THROW(wire::read_transport_frame(frame_of("\x93\x00")), zmanager::ProtocolError);
  EXPECT_THROW(wire::read_transport_frame(frame_of(std::string("\xc1\x07\x90", 3))),
               zmanager::ProtocolError)
      << "kind 7 is unknown";
  const std::string long_body(wire::kMaxControlBody + 1, '\x90');
  EXPECT_THROW(wire::read_transport_frame(frame_of("\xc1\x03" + long_body)),
               zmanager::ProtocolError);
  EXPECT_NO_THROW(wire::read_transport_frame(
      frame_of("\xc1\x03" + std::string(wire::kMaxControlBody, '\x90'))));
}

TEST(ZmqSegments, PlacementsAreReadBackAndEachNamesABlobFrameOnce) {
  const wire::Placement written[] = {{1, 7, 0, 1 << 20}, {3, 9, 4096, 70000}};
  const auto body = wire::encode_placements(written);
  const auto read = wire::decode_placements(body, 4);
  ASSERT_EQ(read.size(), 2u);
  EXPECT_EQ(read[1].frame, 3u);
  EXPECT_EQ(read[1].segment, 9u);
  EXPECT_EQ(read[1].offset, 4096u);
  EXPECT_EQ(read[1].length, 70000u);

  EXPECT_THROW(wire::decode_placements(body, 3), zmanager::ProtocolError) << "frame 3 of 3";
  const wire::Placement body_frame[] = {{0, 7, 0, 10}};
  EXPECT_THROW(wire::decode_placements(wire::encode_placements(body_frame), 4),
               zmanager::ProtocolError)
      << "frame 0 is the body";
  const wire::Placement twice[] = {{2, 7, 0, 10}, {2, 8, 0, 10}};
  EXPECT_THROW(wire::decode_placements(wire::encode_placements(twice), 4), zmanager::ProtocolError);
  EXPECT_THROW(wire::decode_placements(wire::encode_placements({}), 4), zmanager::ProtocolError)
      << "a placement frame that places nothing";
  EXPECT_THROW(wire::decode_placements("\x91\x93\x01\x02\x03", 4), zmanager::ProtocolError);
  EXPECT_THROW(wire::decode_placements("\x91\x94\x01\xa1x\x00\x01", 4), zmanager::ProtocolError);
  EXPECT_THROW(wire::decode_placements("\xc1", 4), zmanager::ProtocolError);
}

TEST(ZmqSegments, OfferProofAndMapsWithDescriptorsAreReadBack) {
  const auto offer = wire::decode_offer(wire::encode_offer({1234, 17, 65536}));
  EXPECT_EQ(offer.pid, 1234u);
  EXPECT_EQ(offer.fd, 17u);
  EXPECT_EQ(offer.size, 65536u);
  EXPECT_THROW(wire::decode_offer("\x92\x01\x02"), zmanager::ProtocolError);

  const std::string token(wire::kProbeTokenBytes, 't');
  EXPECT_EQ(wire::decode_proof(wire::encode_proof(std::as_bytes(std::span(token)))), token);
  EXPECT_THROW(wire::decode_proof("\x91\xa1t"), zmanager::ProtocolError) << "a str, not a bin";
  EXPECT_THROW(wire::decode_proof("\x90"), zmanager::ProtocolError);

  const wire::SegmentSize segments[] = {{1, 65536, 12}, {2, 131072}};
  const auto read = wire::decode_segment_sizes(wire::encode_segment_sizes(segments));
  ASSERT_EQ(read.size(), 2u);
  EXPECT_EQ(read[0].fd, 12);
  EXPECT_EQ(read[1].fd, -1) << "a MAP entry over the stream has no descriptor number";
  // A descriptor number no process has.
  EXPECT_THROW(wire::decode_segment_sizes("\x91\x93\x01\xce\x00\x01\x00\x00\xcf\x00\x00\x00\x01"
                                          "\x00\x00\x00\x00"),
               zmanager::ProtocolError);
}

TEST(ZmqSegments, ASegmentOpenedThroughProcIsTheSameMemory) {
  auto segment = wire::SegmentMapping::create(64 * 1024);
  std::memcpy(segment.data(), "probe token", 11);
  auto opened =
      wire::SegmentMapping::open_in(static_cast<std::uint64_t>(::getpid()),
                                    static_cast<std::uint64_t>(segment.fd()), segment.size());
  EXPECT_NE(opened.data(), segment.data()) << "mapped again";
  EXPECT_EQ(std::memcmp(opened.data(), "probe token", 11), 0);
  opened.data()[20] = std::byte{42};
  EXPECT_EQ(segment.data()[20], std::byte{42}) << "written through the other mapping";

  EXPECT_THROW(
      wire::SegmentMapping::open_in(static_cast<std::uint64_t>(::getpid()),
                                    static_cast<std::uint64_t>(segment.fd()), 2 * segment.size()),
      zmanager::ProtocolError)
      << "not of the size said";
  EXPECT_THROW(wire::SegmentMapping::open_in(static_cast<std::uint64_t>(::getpid()), 1u << 30,
                                             segment.size()),
               zmanager::ConnectionError)
      << "no such descriptor";
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  EXPECT_THROW(wire::SegmentMapping::open_in(static_cast<std::uint64_t>(::getpid()),
                                             static_cast<std::uint64_t>(pipe_fds[0]), 64 * 1024),
               zmanager::Error)
      << "not a memory file";
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);
}

}  // namespace
