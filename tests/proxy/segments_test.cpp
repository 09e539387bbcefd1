// The client's side of the shared segments over ZeroMQ (proxy/src/transport.cpp, docs/protocol.md
// 1.3), against a server played by hand from the protocol document: a client proves it reads the
// probe and then takes blobs in segments; one that cannot open the probe sends its bytes through
// the socket; a malformed transport message from the server ends the session, and the client
// opens a new one.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <future>
#include <optional>
#include <string>

#include <msgpack.hpp>

#include "raw_peer.hpp"
#include "zmanager/wire/protocol.hpp"
#include "zmanager/wire/segment.hpp"
#include "zmanager/zmanager.hpp"

using namespace std::chrono_literals;
namespace wire = zmanager::wire;

namespace {

std::string bin(std::span<const std::byte> bytes) {
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

/// A message's body, parsed from a copy (the message is kept).
std::shared_ptr<wire::Inbound> parse_body(const zmq::message_t& body) {
  wire::Frames one;
  one.emplace_back(body.data(), body.size());
  return wire::Inbound::parse(std::move(one), {});
}

/// A ROUTER bound on the loopback that speaks the server's side of the protocol by hand, one
/// client at a time.
class FakeServer {
 public:
  explicit FakeServer(std::string key) : key_(std::move(key)) {
    router_.set(zmq::sockopt::linger, 0);
    router_.bind("tcp://127.0.0.1:0");
    address_ = router_.get(zmq::sockopt::last_endpoint);
  }
  const std::string& address() const { return address_; }
  const std::string& key() const { return key_; }

  /// The next message but heartbeats, its routing frame taken off; nothing within `timeout`.
  std::optional<wire::Frames> next(std::chrono::milliseconds timeout = 10s) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          until - std::chrono::steady_clock::now());
      zmq::pollitem_t item{router_.handle(), 0, ZMQ_POLLIN, 0};
      if (left.count() <= 0 || zmq::poll(&item, 1, left) <= 0) return std::nullopt;
      auto frames = wire::recv_frames(router_);
      if (!frames || frames->size() < 2) return std::nullopt;
      routing_ = std::string(frames->front().to_string_view());
      frames->erase(frames->begin());
      if (!wire::is_transport_frame(frames->front()) && op_of(*frames) == wire::Op::kPing) continue;
      return frames;
    }
  }
  static wire::Op op_of(const wire::Frames& frames) { return parse_body(frames.front())->op(); }
  void send(std::vector<std::string> frames) {
    router_.send(zmq::buffer(routing_), zmq::send_flags::sndmore);
    for (std::size_t i = 0; i < frames.size(); ++i)
      router_.send(zmq::buffer(frames[i]),
                   i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
  }
  void send_transport(wire::StreamKind kind, std::string_view body) {
    send({std::string(wire::transport_frame(kind, body).to_string_view())});
  }

  /// Answers a HELLO (already received) with CHALLENGE, then AUTH with WELCOME: version 6.
  void welcome(const wire::Frames& hello) {
    auto in = parse_body(hello.front());
    ASSERT_EQ(in->op(), wire::Op::kHello);
    wire::Nonce client_nonce;
    wire::read_nonce(in->field(2), client_nonce);
    const wire::Nonce server_nonce = wire::random_nonce();
    const wire::Mac server_proof =
        wire::proof(key_, wire::kServerLabel, client_nonce, server_nonce);
    msgpack::sbuffer b;
    msgpack::packer<msgpack::sbuffer> pk(b);
    pk.pack_array(4);
    pk.pack(2);
    pk.pack(wire::kProtocolVersion);
    pk.pack_bin(32);
    pk.pack_bin_body(reinterpret_cast<const char*>(server_nonce.data()), 32);
    pk.pack_bin(32);
    pk.pack_bin_body(reinterpret_cast<const char*>(server_proof.data()), 32);
    send({std::string(b.data(), b.size())});
    auto auth = next();
    ASSERT_TRUE(auth && op_of(*auth) == wire::Op::kAuth);
    send({test::body(4, ++sessions_, 1000, 10000, 7)});
  }
  /// Receives the HELLO and answers it; then the client's LEASE [0, 0], which a version 6
  /// client on this host sends first.
  void handshake_until_lease() {
    auto hello = next();
    ASSERT_TRUE(hello) << "no HELLO";
    welcome(*hello);
    auto lease = next();
    ASSERT_TRUE(lease && wire::is_transport_frame(lease->front())) << "no LEASE after WELCOME";
    const auto head = wire::read_transport_frame(lease->front());
    ASSERT_EQ(head.kind, wire::StreamKind::kLease);
  }

 private:
  std::string key_;
  zmq::context_t context_{1};
  zmq::socket_t router_{context_, zmq::socket_type::router};
  std::string address_;
  std::string routing_;
  std::uint64_t sessions_ = 0;
};

/// A client connected to `server`, the handshake played on this thread: its proxy on the
/// server object.
zmanager::DynamicProxy connect_to(FakeServer& server) {
  auto connected = std::async(std::launch::async, [&] {
    return zmanager::connect({.address = server.address(), .authkey = server.key()});
  });
  server.handshake_until_lease();
  EXPECT_EQ(connected.wait_for(10s), std::future_status::ready);
  return zmanager::server_proxy(connected.get());
}

/// The CALL's request id.
std::uint64_t request_of(const zmq::message_t& body) {
  auto in = parse_body(body);
  EXPECT_EQ(in->op(), wire::Op::kCall);
  return in->field(1).as<std::uint64_t>();
}

/// What the server received until a CALL: the transport's messages (kind, body), and the CALL.
struct UntilCall {
  std::vector<std::pair<wire::StreamKind, std::string>> transport;
  wire::Frames call;
  bool has(wire::StreamKind kind) const {
    for (const auto& [k, body] : transport)
      if (k == kind) return true;
    return false;
  }
};
UntilCall until_call(FakeServer& server) {
  UntilCall got;
  for (;;) {
    auto message = server.next();
    if (!message) throw std::runtime_error("no CALL came");
    if (!wire::is_transport_frame(message->front())) {
      got.call = std::move(*message);
      return got;
    }
    const auto head = wire::read_transport_frame(message->front());
    got.transport.emplace_back(head.kind, std::string(head.body));
  }
}
std::string reply_nil(std::uint64_t request) {
  return test::body(6, request, msgpack::type::nil_t(), std::vector<int>{});
}

/// A call with no result, made on another thread and answered here: by its return, every
/// message the server sent before the reply has been read by the client.
UntilCall round_trip(FakeServer& server, const zmanager::DynamicProxy& client) {
  auto ping = std::async(std::launch::async, [&] { client.call<void>("ping"); });
  auto got = until_call(server);
  server.send({reply_nil(request_of(got.call.front()))});
  EXPECT_EQ(ping.wait_for(10s), std::future_status::ready);
  ping.get();
  return got;
}

TEST(ClientSegments, AClientThatCannotOpenTheProbeSendsItsBytesThroughTheSocket) {
  FakeServer server("fake-key");
  auto client = connect_to(server);
  // A descriptor this process does not have: the probe cannot be opened.
  server.send_transport(wire::StreamKind::kOffer,
                        wire::encode_offer({static_cast<std::uint64_t>(::getpid()), 1u << 30,
                                            wire::kSmallestSegment}));
  const auto first = round_trip(server, client);  // the OFFER is read
  const zmanager::Bytes blob(std::size_t{1} << 20);
  auto take = std::async(std::launch::async, [&] { client.call<void>("take", blob); });
  const auto second = until_call(server);
  EXPECT_FALSE(first.has(wire::StreamKind::kProof) || second.has(wire::StreamKind::kProof))
      << "a PROOF from a client that could not read the probe";
  ASSERT_EQ(second.call.size(), 2u);
  EXPECT_EQ(second.call[1].size(), blob.size()) << "the blob did not go through the socket";
  server.send({reply_nil(request_of(second.call.front()))});
  ASSERT_EQ(take.wait_for(10s), std::future_status::ready);
  EXPECT_NO_THROW(take.get());
}

TEST(ClientSegments, AClientProvesItReadTheProbeThenTakesBlobsInSegments) {
  FakeServer server("fake-key");
  auto client = connect_to(server);
  auto probe = wire::SegmentMapping::create(wire::kSmallestSegment);
  const wire::Nonce token = wire::random_nonce();
  std::memcpy(probe.data(), token.data(), token.size());
  server.send_transport(wire::StreamKind::kOffer,
                        wire::encode_offer({static_cast<std::uint64_t>(::getpid()),
                                            static_cast<std::uint64_t>(probe.fd()), probe.size()}));
  auto got = round_trip(server, client);  // the OFFER is read; the PROOF is sent
  auto give = std::async(std::launch::async, [&] { return client.call<zmanager::Bytes>("give"); });
  auto second = until_call(server);
  got.transport.insert(got.transport.end(), second.transport.begin(), second.transport.end());
  ASSERT_EQ(got.transport.size(), 2u) << "not a PROOF and a LEASE";
  ASSERT_EQ(got.transport[0].first, wire::StreamKind::kProof);
  EXPECT_EQ(wire::decode_proof(got.transport[0].second), bin(std::as_bytes(std::span(token))))
      << "the PROOF is not the probe's token";
  EXPECT_EQ(got.transport[1].first, wire::StreamKind::kLease) << "no LEASE after the PROOF";

  // The reply's blob in segment 5, MAPped first with its descriptor number.
  auto segment = wire::SegmentMapping::create(std::size_t{1} << 20);
  std::string bytes(300 * 1024, '\0');
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 7 + 3);
  std::memcpy(segment.data() + 4096, bytes.data(), bytes.size());
  const wire::SegmentSize mapped[] = {{5, segment.size(), segment.fd()}};
  server.send_transport(wire::StreamKind::kMap, wire::encode_segment_sizes(mapped));
  const wire::Placement placed[] = {{1, 5, 4096, bytes.size()}};
  msgpack::sbuffer reply;
  msgpack::packer<msgpack::sbuffer> pk(reply);
  pk.pack_array(4);
  pk.pack(6);
  pk.pack(request_of(second.call.front()));
  pk.pack_ext(4, wire::kExtBlob);
  pk.pack_ext_body("\0\0\0\1", 4);
  pk.pack_array(0);
  server.send({std::string(wire::transport_frame(wire::StreamKind::kMessage,
                                                 wire::encode_placements(placed))
                               .to_string_view()),
               std::string(reply.data(), reply.size()), std::string()});
  ASSERT_EQ(give.wait_for(10s), std::future_status::ready);
  const zmanager::Bytes taken = give.get();
  EXPECT_EQ(bin(std::span(taken.data(), taken.size())), bytes);
  // The bytes were copied out, and the segment is given back with the next message.
  std::memset(segment.data() + 4096, 0, bytes.size());
  EXPECT_EQ(bin(std::span(taken.data(), taken.size())), bytes) << "the bytes alias the segment";
  const auto third = round_trip(server, client);
  ASSERT_EQ(third.transport.size(), 1u);
  EXPECT_EQ(third.transport[0].first, wire::StreamKind::kRelease);
  EXPECT_EQ(wire::decode_segment_ids(third.transport[0].second), std::vector<std::uint64_t>{5});
}

TEST(ClientSegments, AMalformedTransportMessageFromTheServerEndsTheSession) {
  FakeServer server("fake-key");
  auto client = connect_to(server);
  server.send({std::string("\xc1\x09\x90", 3)});  // kind 9: none
  // A call, so that the client reads: it drops the session and says HELLO again.
  auto ping = std::async(std::launch::async, [&] {
    try {
      client.call<void>("ping");
      return std::string("answered");
    } catch (const zmanager::Error& e) {
      return std::string(e.what());
    }
  });
  std::optional<wire::Frames> hello;
  for (int i = 0; i < 4; ++i) {
    hello = server.next();
    ASSERT_TRUE(hello) << "the client did not open a new session";
    if (!wire::is_transport_frame(hello->front()) && FakeServer::op_of(*hello) == wire::Op::kHello)
      break;
  }
  ASSERT_EQ(FakeServer::op_of(*hello), wire::Op::kHello);
  // The new session works: the call is answered or reported lost, and the next one goes through.
  server.welcome(*hello);
  for (int i = 0; i < 4 && ping.wait_for(0s) != std::future_status::ready; ++i) {
    auto message = server.next(2s);
    if (message && !wire::is_transport_frame(message->front()))
      server.send({reply_nil(request_of(message->front()))});
  }
  ASSERT_EQ(ping.wait_for(10s), std::future_status::ready);
  ping.get();
  round_trip(server, client);
}

}  // namespace
