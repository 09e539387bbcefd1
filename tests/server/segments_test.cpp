// Shared segments (docs/protocol.md 1.2 and 1.3): large bytes between a server and its same-host
// clients, unix:// or ZeroMQ, cross through memory files the server lends, not through the
// socket. The bytes arrive intact whichever way they travel, every segment goes back to the pool
// when what held it goes (a client killed included), a ZeroMQ client is lent segments only once
// it proved it maps the server's, and a client that names a segment it may not is refused that
// message and nothing else.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <cstring>

#include "raw_peer.hpp"
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

/// A client process connected at `address` is lent segments, then killed: they all go back to
/// the pool (its session ends when its connection closes, or at the ttl over ZeroMQ).
void expect_a_killed_clients_segments_back(const test::ServerProcess& server,
                                           const std::string& address) {
  auto observer = server.connect();  // sends no blob: lent nothing
  test::Child holder =
      test::Child::spawn({ZMANAGER_TEST_CLIENT, address, server.authkey, "hold-segments", "6"});
  ASSERT_EQ(holder.read_line(), "ready");
  auto held = observer->stats();
  ASSERT_GT(held.segments, 0u) << "the client was lent no segment";
  EXPECT_LT(held.segments_free, held.segments) << "the live client holds none";
  holder.signal(SIGKILL);
  ASSERT_EQ(holder.wait(), 128 + SIGKILL);
  EXPECT_TRUE(test::eventually([&] { return all_segments_free(*observer); }, 10s))
      << "segments of a killed client were not given back";
}

TEST(Segments, AKilledClientsSegmentsGoBackToThePoolAtOnce) {
  auto server = test::ServerProcess::start_with_local_address();
  expect_a_killed_clients_segments_back(server, server.local_address);
}

// A reply whose blobs lie in more segments than one MAP may name (32) makes them known to the
// client in several MAPs, over either transport.
TEST(Segments, AReplyWithBlobsInMoreSegmentsThanOneMapNamesArrivesWhole) {
  auto server = test::ServerProcess::start_with_local_address();
  for (const auto& reader_address : {server.local_address, server.address}) {
    auto writer = server.connect(server.local_address);
    auto box = writer->get_shared<Box>("shared_box");
    constexpr unsigned kBlobs = 48;
    for (unsigned i = 0; i < kBlobs; ++i) box.pile(pattern(64 * 1024, i));
    ASSERT_GT(writer->stats().segments, zmanager::wire::kMaxDescriptorsPerMap)
        << "too few blobs went through segments to need two MAPs";
    // Another client, which was sent none of the segments those blobs are in.
    auto reader = server.connect(reader_address);
    const auto piled = reader->get_shared<Box>("shared_box").with_timeout(10s).take_pile();
    ASSERT_EQ(piled.size(), kBlobs) << reader_address;
    for (unsigned i = 0; i < kBlobs; ++i)
      EXPECT_EQ(piled[i], pattern(64 * 1024, i)) << reader_address << ", blob " << i;
    EXPECT_EQ(reader->stats().rejected, 0u) << reader_address;
  }
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
  for (const auto& address : {server.local_address, server.address}) {
    auto client = server.connect(address);
    auto box = client->create<Box>("Box");
    for (unsigned i = 0; i < 4; ++i) {
      box.set(zmanager::Value(pattern(1 << 20, i)));
      EXPECT_EQ(box.get().as<zmanager::Bytes>(), pattern(1 << 20, i)) << address;
    }
    EXPECT_EQ(client->stats().segments, 0u);
  }
}

// ---- over ZeroMQ (docs/protocol.md 1.3) ----

namespace wire = zmanager::wire;
using test::body;
using test::RawPeer;

std::string transport(wire::StreamKind kind, std::string_view message_body) {
  return std::string(wire::transport_frame(kind, message_body).to_string_view());
}

struct Transported {
  wire::StreamKind kind;
  std::string body;
};

/// The next message, which must be one of the transport's own.
Transported next_transport(RawPeer& peer) {
  auto frames = peer.recv_raw();
  if (!frames) throw std::runtime_error("no message came");
  if (frames->size() != 1 || !wire::is_transport_frame(frames->front()))
    throw std::runtime_error("a message that is not the transport's own came");
  const auto head = wire::read_transport_frame(frames->front());
  return {head.kind, std::string(head.body)};
}

/// A CALL whose one argument is the message's first blob frame.
std::string call_with_blob(std::uint64_t request, std::uint64_t object, const std::string& method) {
  msgpack::sbuffer b;
  msgpack::packer<msgpack::sbuffer> pk(b);
  pk.pack_array(6);
  pk.pack(5);
  pk.pack(request);
  pk.pack(object);
  pk.pack(method);
  pk.pack_array(1);
  pk.pack_ext(4, wire::kExtBlob);
  pk.pack_ext_body("\0\0\0\1", 4);
  pk.pack_array(0);
  return std::string(b.data(), b.size());
}

std::string bytes_of(const zmanager::Bytes& b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

/// A peer speaking 1.3 by hand: authenticated, then the server's shared Box looked up.
struct ZmqPeer {
  ZmqPeer(const test::ServerProcess& server) : raw(server.address, 6) {
    auto welcome = raw.handshake(server.authkey);
    if (!welcome || welcome->op() != wire::Op::kWelcome) throw std::runtime_error("no WELCOME");
    box = reply_refs(call(body(5, 1, 0, std::string("shared"),
                               std::make_tuple(std::string("shared_box")), std::vector<int>{})))
              .at(0);
  }
  std::shared_ptr<wire::Inbound> call(const std::string& message) {
    raw.send({message});
    return raw.recv();
  }
  static std::vector<std::uint64_t> reply_refs(const std::shared_ptr<wire::Inbound>& in) {
    if (!in || in->op() != wire::Op::kReply) throw std::runtime_error("no REPLY");
    return wire::as_id_list(in->field(3), "refs");
  }
  /// LEASE [0, 0]: the server's OFFER, then its LEND [].
  wire::Offer ask_offer() {
    raw.send({transport(wire::StreamKind::kLease, wire::encode_lease({0, 0}))});
    const auto offer = next_transport(raw);
    EXPECT_EQ(offer.kind, wire::StreamKind::kOffer);
    const auto lend = next_transport(raw);
    EXPECT_EQ(lend.kind, wire::StreamKind::kLend);
    EXPECT_TRUE(wire::decode_segment_ids(lend.body).empty());
    return wire::decode_offer(offer.body);
  }
  void prove(const std::string& token) {
    raw.send(
        {transport(wire::StreamKind::kProof, wire::encode_proof(std::as_bytes(std::span(token))))});
  }
  /// LEASE [count, size]: the segments MAPped (opened through /proc) then LENT.
  std::vector<std::uint64_t> lease(std::uint64_t count, std::uint64_t size) {
    raw.send({transport(wire::StreamKind::kLease, wire::encode_lease({count, size}))});
    for (;;) {
      auto message = next_transport(raw);
      if (message.kind == wire::StreamKind::kLend) return wire::decode_segment_ids(message.body);
      EXPECT_EQ(message.kind, wire::StreamKind::kMap);
      for (const auto& segment : wire::decode_segment_sizes(message.body)) {
        EXPECT_GE(segment.fd, 0) << "a MAP over ZeroMQ without the descriptor's number";
        mapped.emplace(segment.id,
                       wire::SegmentMapping::open_in(
                           server_pid, static_cast<std::uint64_t>(segment.fd), segment.size));
      }
    }
  }
  /// Sends `message` with its blob frame 1 placed in `segment`, the frame itself `sent_frame`.
  void send_placed(const std::string& message, std::uint64_t segment, std::uint64_t length,
                   const std::string& sent_frame = {}) {
    const wire::Placement placed[] = {{1, segment, 0, length}};
    raw.send({transport(wire::StreamKind::kMessage, wire::encode_placements(placed)), message,
              sent_frame});
  }

  RawPeer raw;
  std::uint64_t box = 0;
  std::uint64_t server_pid = 0;
  std::map<std::uint64_t, wire::SegmentMapping> mapped;
};

TEST(ZmqSegments, WithoutASessionALeaseIsLentNothingAProofIsIgnoredAndAPlacedCallRefused) {
  auto server = test::ServerProcess::start({});
  RawPeer peer(server.address, 6);
  peer.send({transport(wire::StreamKind::kLease, wire::encode_lease({4, 1 << 20}))});
  auto lend = next_transport(peer);
  EXPECT_EQ(lend.kind, wire::StreamKind::kLend) << "an OFFER to a peer without a session";
  EXPECT_TRUE(wire::decode_segment_ids(lend.body).empty());
  const std::string token(wire::kProbeTokenBytes, 'x');
  peer.send(
      {transport(wire::StreamKind::kProof, wire::encode_proof(std::as_bytes(std::span(token))))});
  // A placed message is answered as any message without a session.
  const wire::Placement placed[] = {{1, 1, 0, 1024}};
  peer.send({transport(wire::StreamKind::kMessage, wire::encode_placements(placed)),
             call_with_blob(7, 1, "set"), std::string()});
  auto refused = peer.recv();
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->field(1).as<std::uint64_t>(), 7u);
  EXPECT_EQ(peer.error_of(refused).kind, "no_session");
  auto welcome = peer.handshake(server.authkey);  // the next message is the CHALLENGE
  ASSERT_TRUE(welcome && welcome->op() == wire::Op::kWelcome);
}

TEST(ZmqSegments, AProvedPeerWritesBlobsIntoLentSegmentsAndIsSentThemInPlace) {
  auto server = test::ServerProcess::start({});
  ZmqPeer a(server);
  const auto offer = a.ask_offer();
  EXPECT_EQ(offer.pid, static_cast<std::uint64_t>(server.child.pid()));
  a.server_pid = offer.pid;
  auto probe = wire::SegmentMapping::open_in(offer.pid, offer.fd, offer.size);
  a.prove(std::string(reinterpret_cast<const char*>(probe.data()), wire::kProbeTokenBytes));
  const auto lent = a.lease(2, 1 << 20);
  ASSERT_EQ(lent.size(), 2u) << "a proved peer was not lent what it asked for";
  for (auto id : lent) {
    ASSERT_TRUE(a.mapped.count(id)) << "LEND of a segment never MAPped";
    ASSERT_GE(a.mapped.at(id).size(), std::size_t{1} << 20);
  }
  auto set_placed = [&](std::uint64_t request, std::uint64_t segment, const zmanager::Bytes& blob) {
    std::memcpy(a.mapped.at(segment).data(), blob.data(), blob.size());
    a.send_placed(call_with_blob(request, a.box, "set"), segment, blob.size());
    auto set = a.raw.recv();
    ASSERT_TRUE(set && set->op() == wire::Op::kReply) << "the placed blob was not taken";
  };

  // A peer that never proved it maps segments (another host's) gets the bytes in its message.
  const auto first = pattern(1 << 20, 5);
  set_placed(2, lent[0], first);
  ZmqPeer b(server);
  b.raw.send({body(5, 2, b.box, std::string("take"), std::make_tuple(), std::vector<int>{})});
  auto plain = b.raw.recv_raw();
  ASSERT_TRUE(plain);
  ASSERT_EQ(plain->size(), 2u);
  EXPECT_FALSE(wire::is_transport_frame(plain->front()));
  EXPECT_EQ(plain->at(1).to_string_view(), bytes_of(first));

  // The proved peer is sent it in place: a placement frame, the body, an empty blob frame.
  const auto second = pattern((1 << 20) - 100, 6);
  set_placed(3, lent[1], second);
  a.raw.send({body(5, 4, a.box, std::string("take"), std::make_tuple(), std::vector<int>{})});
  auto placed = a.raw.recv_raw();
  ASSERT_TRUE(placed);
  ASSERT_EQ(placed->size(), 3u);
  ASSERT_TRUE(wire::is_transport_frame(placed->front()));
  const auto head = wire::read_transport_frame(placed->front());
  ASSERT_EQ(head.kind, wire::StreamKind::kMessage);
  const auto places = wire::decode_placements(head.body, 2);
  ASSERT_EQ(places.size(), 1u);
  EXPECT_EQ(places[0].frame, 1u);
  EXPECT_EQ(places[0].segment, lent[1]) << "the bytes written were copied";
  EXPECT_EQ(places[0].length, second.size());
  EXPECT_EQ(placed->at(2).size(), 0u);
  const auto& memory = a.mapped.at(places[0].segment);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(memory.data() + places[0].offset),
                        places[0].length),
            bytes_of(second));
  const std::uint64_t read_from[] = {places[0].segment};
  a.raw.send({transport(wire::StreamKind::kRelease, wire::encode_segment_ids(read_from))});
  auto observer = server.connect();
  EXPECT_TRUE(test::eventually([&] { return all_segments_free(*observer); }, 10s))
      << "a segment given back is still held";
}

TEST(ZmqSegments, AWrongProofLendsNothing) {
  auto server = test::ServerProcess::start({});
  ZmqPeer peer(server);
  peer.ask_offer();
  peer.prove(std::string(wire::kProbeTokenBytes, '\0'));
  EXPECT_TRUE(peer.lease(2, 1 << 20).empty());
  EXPECT_TRUE(peer.mapped.empty()) << "segments MAPped to a peer that did not prove";
  // Nor is a second OFFER made: the next LEASE is answered LEND [] alone.
  EXPECT_TRUE(peer.lease(2, 1 << 20).empty());
  // And its blobs go through the socket.
  const auto blob = pattern(1 << 20, 9);
  peer.raw.send({call_with_blob(2, peer.box, "set"), bytes_of(blob)});
  auto set = peer.raw.recv();
  ASSERT_TRUE(set && set->op() == wire::Op::kReply);
}

TEST(ZmqSegments, APlacementThatBreaksTheRulesIsRefusedAndTheSessionGoesOn) {
  auto server = test::ServerProcess::start({});
  ZmqPeer peer(server);
  const auto offer = peer.ask_offer();
  peer.server_pid = offer.pid;
  auto probe = wire::SegmentMapping::open_in(offer.pid, offer.fd, offer.size);
  peer.prove(std::string(reinterpret_cast<const char*>(probe.data()), wire::kProbeTokenBytes));
  const auto lent = peer.lease(2, 1 << 20);
  ASSERT_GE(lent.size(), 1u);
  const std::uint64_t segment = lent.front();
  auto request_of = [](const std::shared_ptr<wire::Inbound>& in) {
    return in ? in->field(1).as<std::uint64_t>() : 0;
  };

  // A segment not lent; one lent but with bytes in the placed frame; past the segment's end.
  peer.send_placed(call_with_blob(10, peer.box, "set"), 999, 1024);
  auto not_lent = peer.raw.recv();
  EXPECT_EQ(request_of(not_lent), 10u);
  EXPECT_NE(peer.raw.error_of(not_lent).message.find("not lent"), std::string::npos);
  peer.send_placed(call_with_blob(11, peer.box, "set"), segment, 1024, "bytes");
  auto not_empty = peer.raw.recv();
  EXPECT_EQ(request_of(not_empty), 11u);
  EXPECT_EQ(peer.raw.error_of(not_empty).type, "ProtocolError");
  peer.send_placed(call_with_blob(12, peer.box, "set"), segment,
                   peer.mapped.at(segment).size() + 1);
  auto too_long = peer.raw.recv();
  EXPECT_EQ(request_of(too_long), 12u);
  EXPECT_EQ(peer.raw.error_of(too_long).type, "ProtocolError");
  // Malformed transport messages, and a server's kind from a client: ERROR, request id 0.
  for (const std::string& bad : {std::string("\xc1"), std::string("\xc1\x09\x90", 3),
                                 transport(wire::StreamKind::kLease, "\xc1"),
                                 transport(wire::StreamKind::kMap, wire::encode_segment_ids({})),
                                 transport(wire::StreamKind::kMessage, "\x90")}) {
    peer.raw.send({bad});
    auto in = peer.raw.recv();
    EXPECT_EQ(request_of(in), 0u);
    EXPECT_EQ(peer.raw.error_of(in).type, "ProtocolError");
  }

  // The session stays: the segment still lent is written into and taken.
  const auto blob = pattern(1 << 20, 3);
  std::memcpy(peer.mapped.at(segment).data(), blob.data(), blob.size());
  peer.send_placed(call_with_blob(13, peer.box, "set"), segment, blob.size());
  auto set = peer.raw.recv();
  ASSERT_TRUE(set && set->op() == wire::Op::kReply);
  EXPECT_EQ(request_of(set), 13u);
  // Once taken it is lent no more.
  peer.send_placed(call_with_blob(14, peer.box, "set"), segment, blob.size());
  auto again = peer.raw.recv();
  EXPECT_EQ(request_of(again), 14u);
  EXPECT_EQ(peer.raw.error_of(again).type, "ProtocolError");
}

TEST(ZmqSegments, LargeBytesThroughAQueueOverTcpGoThroughSegmentsIntact) {
  zmanager::SyncManager m({.address = "tcp://127.0.0.1:0"});
  m.register_shared_dict("objects");
  m.start();  // the server is a child process; this one's connection is ZeroMQ over TCP
  auto q = m.Queue<zmanager::Bytes>();
  for (unsigned i = 0; i < 16; ++i) q.put(pattern((1 << 20) + i * 4096, i));
  for (unsigned i = 0; i < 16; ++i) ASSERT_EQ(q.get(), pattern((1 << 20) + i * 4096, i)) << i;
  const auto stats = m.stats();
  EXPECT_GT(stats.segments, 0u) << "no blob went through a segment";

  // Put by one connection, got by another, both ways.
  m.shared_dict("objects")["q"] = zmanager::Value(q);
  zmanager::SyncManager other({.address = m.address(), .authkey = m.authkey()});
  other.connect();
  auto other_q = other.shared_dict("objects")["q"].as<zmanager::QueueProxy<zmanager::Bytes>>();
  for (unsigned i = 0; i < 8; ++i) q.put(pattern(3 << 20, 100 + i));
  for (unsigned i = 0; i < 8; ++i) ASSERT_EQ(other_q.get(), pattern(3 << 20, 100 + i));
  for (unsigned i = 0; i < 8; ++i) other_q.put(pattern(200 * 1024, 200 + i));
  for (unsigned i = 0; i < 8; ++i) ASSERT_EQ(q.get(), pattern(200 * 1024, 200 + i));
}

TEST(ZmqSegments, AKilledZeroMqClientsSegmentsGoBackWhenItsSessionExpires) {
  zmanager::ServerOptions options;
  options.session_ttl = 1000ms;
  auto server = test::ServerProcess::start(options);
  expect_a_killed_clients_segments_back(server, server.address);
}

}  // namespace
