// Shared segments (docs/protocol.md 1.2): large bytes between a server and its same-host
// clients cross through memory files the server lends, not through the socket. The bytes arrive
// intact whichever way they travel, every segment goes back to the pool when what held it goes
// (a client killed included), and a connection that names a segment it may not is refused that
// message and nothing else.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <cstring>

#include "raw_stream.hpp"
#include "server_process.hpp"
#include "timing.hpp"
#include "zmanager/wire/segment.hpp"

using namespace std::chrono_literals;

namespace {

/// Bytes whose every byte depends on `seed` and its position, so that a mixed-up or stale
/// segment shows.
zmanager::Bytes pattern(std::size_t size, unsigned seed) {
  zmanager::Bytes b(size);
  for (std::size_t i = 0; i < size; ++i)
    b.data()[i] = static_cast<std::byte>((i * 131 + seed * 7919 + (i >> 12)) & 0xff);
  return b;
}

bool all_segments_free(zmanager::BaseManager& client) {
  auto s = client.stats();
  return s.segments > 0 && s.segments_free == s.segments;
}

TEST(Segments, LargeBytesThroughAQueueArriveIntactOverEveryTransport) {
  const std::string local = test::abstract_unix_address("q");
  zmanager::SyncManager m({.address = "tcp://127.0.0.1:0", .local_address = local});
  m.register_shared_dict("objects");
  m.start();  // this process's connection is the Unix one
  auto q = m.Queue<zmanager::Bytes>();
  constexpr int kItems = 24;
  const std::size_t sizes[] = {64 * 1024, 1 << 20, 3 << 20, 100 * 1024};
  auto size_of = [&](int i) { return sizes[static_cast<std::size_t>(i) % std::size(sizes)]; };
  // Put and got on the same connection: client to server, then server to client, in segments.
  for (int i = 0; i < kItems; ++i) q.put(pattern(size_of(i), static_cast<unsigned>(i)));
  for (int i = 0; i < kItems; ++i)
    ASSERT_EQ(q.get(), pattern(size_of(i), static_cast<unsigned>(i))) << "item " << i;
  auto stats = m.stats();
  EXPECT_GT(stats.segments, 0u) << "no blob went through a segment";

  // Put over the Unix socket, got by a ZeroMQ client: the server sends a segment's bytes.
  m.shared_dict("objects")["q"] = zmanager::Value(q);
  zmanager::SyncManager remote({.address = m.address(), .authkey = m.authkey()});
  remote.connect();
  auto remote_q = remote.shared_dict("objects")["q"].as<zmanager::QueueProxy<zmanager::Bytes>>();
  for (int i = 0; i < 8; ++i) q.put(pattern(1 << 20, 1000u + static_cast<unsigned>(i)));
  for (int i = 0; i < 8; ++i)
    ASSERT_EQ(remote_q.get(), pattern(1 << 20, 1000u + static_cast<unsigned>(i)));

  // And the other way: put by the ZeroMQ client, got over the Unix socket.
  for (int i = 0; i < 4; ++i) remote_q.put(pattern(1 << 20, 2000u + static_cast<unsigned>(i)));
  for (int i = 0; i < 4; ++i)
    ASSERT_EQ(q.get(), pattern(1 << 20, 2000u + static_cast<unsigned>(i)));
  EXPECT_EQ(q.qsize(), 0u);
}

// A put that hands its item straight to a parked get sends the item's own storage only if
// nothing else holds it: the request's own hold on its frames must be gone by then, else a 1 MiB
// item is copied on the server and leaves through the socket rather than in its segment.
TEST(Segments, ADecodedBytesArgumentHoldsItsBytesAlone) {
  auto server = test::ServerProcess::start_with_local_address();
  for (const auto& address : {server.address, server.local_address}) {
    auto client = server.connect(address);
    auto maths = client->create<Maths>("Maths");
    EXPECT_TRUE(maths.held_alone(zmanager::Bytes(std::size_t{1} << 20))) << address;
    EXPECT_TRUE(maths.held_alone(zmanager::Bytes(std::size_t{16}))) << address << ", inline";
  }
}

TEST(Segments, AKilledClientsSegmentsGoBackToThePoolAtOnce) {
  auto server = test::ServerProcess::start_with_local_address();
  auto observer = server.connect();  // over ZeroMQ: lent nothing
  test::Child holder = test::Child::spawn(
      {ZMANAGER_TEST_CLIENT, server.local_address, server.authkey, "hold-segments", "6"});
  ASSERT_EQ(holder.read_line(), "ready");
  auto held = observer->stats();
  ASSERT_GT(held.segments, 0u) << "the client was lent no segment";
  EXPECT_LT(held.segments_free, held.segments) << "the live client holds none";
  holder.signal(SIGKILL);
  ASSERT_EQ(holder.wait(), 128 + SIGKILL);
  EXPECT_TRUE(test::eventually([&] { return all_segments_free(*observer); }, 10s))
      << "segments of a killed client were not given back";
}

/// Records the server's own stream messages a raw client receives.
struct RecordedControls : zmanager::wire::SegmentEndpoint {
  void on_control(zmanager::wire::StreamKind kind, std::string_view body) override {
    controls.emplace_back(kind, std::string(body));
  }
  zmq::message_t frame_in(std::uint64_t, std::uint64_t, std::uint64_t) override {
    throw zmanager::ProtocolError("unexpected");
  }
  std::vector<std::pair<zmanager::wire::StreamKind, std::string>> controls;
};

TEST(Segments, AConnectionWithoutASessionIsLentNothing) {
  auto server = test::ServerProcess::start_with_local_address();
  RecordedControls recorded;
  test::RawStream raw(server.local_address, &recorded);
  raw.write(
      test::RawStream::message(zmanager::wire::encode_lease({4, 1 << 20}),
                               static_cast<std::uint32_t>(zmanager::wire::StreamKind::kLease)));
  raw.write(test::RawStream::hello());
  ASSERT_TRUE(raw.read()) << "no CHALLENGE";  // the LEND came before it
  ASSERT_EQ(recorded.controls.size(), 1u);
  EXPECT_EQ(recorded.controls[0].first, zmanager::wire::StreamKind::kLend);
  EXPECT_TRUE(zmanager::wire::decode_segment_ids(recorded.controls[0].second).empty());
  EXPECT_EQ(server.connect()->stats().segments, 0u);
}

TEST(Segments, ABlobInASegmentNotLentIsRefusedAndTheConnectionStaysInStep) {
  auto server = test::ServerProcess::start_with_local_address();
  test::RawStream raw(server.local_address);
  const std::string call_start = "\x96\x05\x4d";  // [5, 77, ...: a CALL's start
  raw.write(test::RawStream::message_in_segment(call_start, 7, 0, 1 << 20));
  raw.write(test::RawStream::hello());
  auto wire_error = raw.expect_refused_then_challenge("bad_request", "ProtocolError");
  EXPECT_NE(wire_error["message"].find("not lent"), std::string::npos) << wire_error["message"];
}

TEST(Segments, AMalformedControlMessageClosesOnlyItsConnection) {
  auto server = test::ServerProcess::start_with_local_address();
  auto client = server.connect(server.local_address);
  auto maths = client->create<Maths>("Maths");
  const zmanager::Bytes blob(std::size_t{1} << 20);
  EXPECT_EQ(maths.length(blob), blob.size());
  test::RawStream raw(server.local_address);
  raw.write(test::RawStream::message(
      "\xc1", static_cast<std::uint32_t>(zmanager::wire::StreamKind::kLease)));
  EXPECT_TRUE(raw.closed_by_server());
  test::RawStream raw_map(server.local_address);  // a server's message, from a client
  raw_map.write(
      test::RawStream::message(zmanager::wire::encode_segment_ids({}),
                               static_cast<std::uint32_t>(zmanager::wire::StreamKind::kMap)));
  EXPECT_TRUE(raw_map.closed_by_server());
  for (int i = 0; i < 4; ++i) EXPECT_EQ(maths.length(blob), blob.size());
  EXPECT_GE(client->stats().rejected, 2u);
}

TEST(Segments, WithThePoolOffLargeBytesGoThroughTheSocket) {
  zmanager::ServerOptions options;
  options.segment_pool_bytes = 0;
  auto server = test::ServerProcess::start_with_local_address(options);
  auto client = server.connect(server.local_address);
  auto box = client->create<Box>("Box");
  for (unsigned i = 0; i < 4; ++i) {
    box.set(zmanager::Value(pattern(1 << 20, i)));
    EXPECT_EQ(box.get().as<zmanager::Bytes>(), pattern(1 << 20, i));
  }
  EXPECT_EQ(client->stats().segments, 0u);
}

}  // namespace
