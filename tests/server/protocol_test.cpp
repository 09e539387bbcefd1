// The server against hand-made traffic from raw ZeroMQ peers: every malformed, oversized,
// unauthenticated or mis-versioned message gets a clear answer (or is dropped) and the server
// keeps serving well-behaved clients.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <thread>

#include "raw_peer.hpp"
#include "server_process.hpp"
#include "zmanager/wire/protocol.hpp"

using namespace std::chrono_literals;
namespace wire = zmanager::wire;
using test::body;
using test::RawPeer;

namespace {

class Protocol : public ::testing::Test {
 protected:
  void SetUp() override {
    zmanager::ServerOptions options;
    options.max_body_bytes = 64 * 1024;
    options.max_message_bytes = 1 << 20;
    server.emplace(test::ServerProcess::start(options));
  }
  // A well-behaved client still gets correct answers, and the server counted the rejection.
  void expect_server_serves() {
    auto client = server->connect();
    auto maths = client->create<Maths>("Maths");
    EXPECT_EQ(maths.add(40, 2), 42);
  }
  std::uint64_t rejected() { return server->connect()->stats().rejected; }
  std::optional<test::ServerProcess> server;
};

// Creates a Holder through `peer` (authenticated); its object id, or 0.
std::uint64_t create_holder(RawPeer& peer) {
  peer.send({body(5, 1, 0, std::string("create"),
                  std::make_tuple(std::string("Holder"), std::vector<int>{}), std::vector<int>{})});
  auto created = peer.recv();
  if (!created || created->op() != wire::Op::kReply) return 0;
  auto refs = wire::as_id_list(created->field(3), "refs");
  return refs.empty() ? 0 : refs[0];
}

TEST_F(Protocol, ARawPeerCanCallAfterTheHandshake) {
  RawPeer peer(server->address);
  auto welcome = peer.handshake(server->authkey);
  ASSERT_TRUE(welcome);
  ASSERT_EQ(welcome->op(), wire::Op::kWelcome);
  peer.send({body(5, 7, 0, std::string("create"),
                  std::make_tuple(std::string("Maths"), std::vector<int>{}), std::vector<int>{})});
  auto created = peer.recv();
  ASSERT_TRUE(created);
  ASSERT_EQ(created->op(), wire::Op::kReply);
  EXPECT_EQ(created->field(1).as<std::uint64_t>(), 7u);
  auto refs = wire::as_id_list(created->field(3), "refs");
  ASSERT_EQ(refs.size(), 1u);
  peer.send({body(5, 8, refs[0], std::string("add"), std::make_tuple(2, 3), std::vector<int>{})});
  auto sum = peer.recv();
  ASSERT_TRUE(sum);
  EXPECT_EQ(sum->op(), wire::Op::kReply);
  EXPECT_EQ(sum->field(2).as<int>(), 5);
}

// The messages of a BATCH, each parsed as if it had come alone; a batch that is not an array
// of bins fails the test.
std::vector<std::shared_ptr<wire::Inbound>> messages_of(const wire::Inbound& batch) {
  std::vector<std::shared_ptr<wire::Inbound>> messages;
  const auto& list = batch.field(1);
  if (list.type != msgpack::type::ARRAY) {
    ADD_FAILURE() << "a batch holds no array";
    return messages;
  }
  for (std::uint32_t k = 0; k < list.via.array.size; ++k) {
    const auto& bin = list.via.array.ptr[k];
    if (bin.type != msgpack::type::BIN) {
      ADD_FAILURE() << "a batched message is not bin";
      continue;
    }
    wire::Frames frames;
    frames.emplace_back(bin.via.bin.ptr, bin.via.bin.size);
    messages.push_back(wire::Inbound::parse(std::move(frames), {}));
  }
  return messages;
}

// Version 3: replies to calls in flight together may come in one BATCH of their bodies, to a
// peer whose HELLO said 3; a version 2 peer gets each on its own. Every call is answered once.
TEST_F(Protocol, PipelinedRepliesComeBatchedToAVersion3PeerAndOneByOneToAVersion2Peer) {
  for (std::uint32_t version : {2u, 3u}) {
    SCOPED_TRACE(version);
    RawPeer peer(server->address, version);
    auto welcome = peer.handshake(server->authkey);
    ASSERT_TRUE(welcome && welcome->op() == wire::Op::kWelcome);
    peer.send(
        {body(5, 1, 0, std::string("create"),
              std::make_tuple(std::string("Maths"), std::vector<int>{}), std::vector<int>{})});
    auto created = peer.recv();
    ASSERT_TRUE(created && created->op() == wire::Op::kReply);
    const std::uint64_t maths = wire::as_id_list(created->field(3), "refs").at(0);
    constexpr int kCalls = 300;
    for (int i = 0; i < kCalls; ++i)
      peer.send(
          {body(5, 100 + i, maths, std::string("add"), std::make_tuple(i, 1), std::vector<int>{})});
    std::map<std::uint64_t, int> results;
    int batches = 0;
    auto take = [&](const wire::Inbound& reply) {
      ASSERT_EQ(reply.op(), wire::Op::kReply);
      EXPECT_TRUE(
          results.emplace(reply.field(1).as<std::uint64_t>(), reply.field(2).as<int>()).second)
          << "answered twice";
    };
    while (results.size() < kCalls) {
      auto in = peer.recv();
      ASSERT_TRUE(in) << results.size() << " replies came";
      if (in->op() != wire::Op::kBatch) {
        take(*in);
        continue;
      }
      ++batches;
      auto messages = messages_of(*in);
      EXPECT_GE(messages.size(), 2u) << "a batch of one";
      for (const auto& message : messages) take(*message);
    }
    for (int i = 0; i < kCalls; ++i) EXPECT_EQ(results[static_cast<std::uint64_t>(100 + i)], i + 1);
    if (version < 3)
      EXPECT_EQ(batches, 0);
    else
      EXPECT_GT(batches, 0) << "300 calls in flight were all answered one by one";
  }
}

// The messages a peer received, each message of a BATCH on its own, until `count` came (or
// nothing more within the timeout).
std::vector<std::shared_ptr<wire::Inbound>> receive_unbatched(RawPeer& peer, std::size_t count) {
  std::vector<std::shared_ptr<wire::Inbound>> got;
  while (got.size() < count) {
    auto in = peer.recv();
    if (!in) break;
    if (in->op() != wire::Op::kBatch) {
      got.push_back(std::move(in));
      continue;
    }
    for (auto& message : messages_of(*in)) got.push_back(std::move(message));
  }
  return got;
}

// BATCH from client to server: `bodies`, each a bin.
std::string batch_of(const std::vector<std::string>& bodies) {
  msgpack::sbuffer b;
  msgpack::packer<msgpack::sbuffer> pk(b);
  pk.pack_array(2);
  pk.pack(11);
  pk.pack_array(static_cast<std::uint32_t>(bodies.size()));
  for (const auto& one : bodies) {
    pk.pack_bin(static_cast<std::uint32_t>(one.size()));
    pk.pack_bin_body(one.data(), one.size());
  }
  return std::string(b.data(), b.size());
}

// Version 4: a client may send many calls as one BATCH; each is handled as if it had come
// alone, so one that is malformed, mis-typed or not a call costs only itself.
TEST_F(Protocol, CallsSentInOneBatchAreEachAnsweredAndABadOneCostsOnlyItself) {
  RawPeer peer(server->address, 4);
  auto welcome = peer.handshake(server->authkey);
  ASSERT_TRUE(welcome && welcome->op() == wire::Op::kWelcome);
  peer.send({body(5, 1, 0, std::string("create"),
                  std::make_tuple(std::string("Maths"), std::vector<int>{}), std::vector<int>{})});
  auto created = peer.recv();
  ASSERT_TRUE(created && created->op() == wire::Op::kReply);
  const std::uint64_t maths = wire::as_id_list(created->field(3), "refs").at(0);

  std::vector<std::string> bodies;
  for (int i = 0; i < 10; ++i)
    bodies.push_back(
        body(5, 100 + i, maths, std::string("add"), std::make_tuple(i, 1), std::vector<int>{}));
  bodies.push_back("\xc1 not msgpack");  // malformed: an error with request id 0
  bodies.push_back(body(5, 200, maths, std::string("add"), std::make_tuple(std::string("x"), 1),
                        std::vector<int>{}));  // mis-typed: its own error
  bodies.push_back(batch_of({body(5, 300, maths, std::string("add"), std::make_tuple(1, 1),
                                  std::vector<int>{})}));  // nested: refused, never run
  bodies.push_back(body(1, 2, std::string(32, 'n')));      // a HELLO has no place in a batch
  peer.send({batch_of(bodies)});

  auto got = receive_unbatched(peer, 14);
  ASSERT_EQ(got.size(), 14u);
  std::map<std::uint64_t, int> sums;
  std::map<std::uint64_t, std::string> errors;  // request id -> type
  int unaddressed_errors = 0;
  for (const auto& in : got) {
    const auto id = in->field(1).as<std::uint64_t>();
    if (in->op() == wire::Op::kReply) {
      EXPECT_TRUE(sums.emplace(id, in->field(2).as<int>()).second) << "answered twice";
      continue;
    }
    auto e = peer.error_of(in);
    if (id == 0)
      ++unaddressed_errors;
    else
      errors[id] = e.type;
  }
  for (int i = 0; i < 10; ++i) EXPECT_EQ(sums[static_cast<std::uint64_t>(100 + i)], i + 1);
  EXPECT_EQ(errors[200], "TypeError");
  EXPECT_EQ(unaddressed_errors, 3);  // the malformed body, the nested batch, the hello
  EXPECT_EQ(sums.count(300), 0u);
  EXPECT_FALSE(peer.recv(200ms)) << "more answers than messages";
  expect_server_serves();
}

TEST_F(Protocol, ABatchBeforeAuthenticationIsRefusedAndNothingInItRuns) {
  RawPeer peer(server->address, 4);
  peer.send({batch_of(
      {body(5, 11, 0, std::string("create"),
            std::make_tuple(std::string("Maths"), std::vector<int>{}), std::vector<int>{})})});
  auto e = peer.error_of(peer.recv());
  EXPECT_EQ(e.kind, "no_session");
  EXPECT_FALSE(peer.recv(200ms));
  expect_server_serves();
}

TEST_F(Protocol, AMalformedOrOversizedBatchIsRefusedWhole) {
  RawPeer peer(server->address, 4);
  auto welcome = peer.handshake(server->authkey);
  ASSERT_TRUE(welcome && welcome->op() == wire::Op::kWelcome);
  peer.send({body(11, 5)});  // no array
  EXPECT_EQ(peer.error_of(peer.recv()).kind, "bad_request");
  peer.send({body(11, std::vector<int>{1, 2})});  // not bins
  EXPECT_EQ(peer.error_of(peer.recv()).kind, "bad_request");
  // More messages than a batch may carry: refused before any runs.
  std::vector<std::string> pings(1025, body(8));
  peer.send({batch_of(pings)});
  EXPECT_EQ(peer.error_of(peer.recv()).kind, "limit");
  EXPECT_FALSE(peer.recv(200ms)) << "a message of the refused batch was handled";
  expect_server_serves();
}

TEST_F(Protocol, CallsBeforeAuthenticationAreRefused) {
  RawPeer peer(server->address);
  peer.send({body(5, 11, 0, std::string("stats"), std::vector<int>{}, std::vector<int>{})});
  auto in = peer.recv();
  auto e = peer.error_of(in);
  EXPECT_EQ(in->field(1).as<std::uint64_t>(), 11u);
  EXPECT_EQ(e.kind, "no_session");
  EXPECT_EQ(e.type, "ConnectionError");
  expect_server_serves();
}

TEST_F(Protocol, AnUnknownProtocolVersionIsRefused) {
  RawPeer peer(server->address);
  std::string nonce(32, 'n');
  msgpack::sbuffer b;
  msgpack::packer<msgpack::sbuffer> pk(b);
  pk.pack_array(3);
  pk.pack(1);
  pk.pack(99);
  pk.pack_bin(32);
  pk.pack_bin_body(nonce.data(), 32);
  peer.send({std::string(b.data(), b.size())});
  auto e = peer.error_of(peer.recv());
  EXPECT_EQ(e.kind, "version");
  EXPECT_NE(e.message.find("99"), std::string::npos);
  expect_server_serves();
}

TEST_F(Protocol, AWrongKeyIsRefusedAndOthersAreServed) {
  RawPeer peer(server->address);
  auto e = peer.error_of(peer.handshake("not-the-key"));
  EXPECT_EQ(e.kind, "auth");
  EXPECT_EQ(e.type, "AuthenticationError");
  EXPECT_THROW(zmanager::connect({server->address, "not-the-key", 5s}),
               zmanager::AuthenticationError);
  expect_server_serves();
  EXPECT_EQ(server->connect()->stats().auth_failures, 2u);
}

TEST_F(Protocol, MalformedMessagesAreAnsweredAndTheServerKeepsServing) {
  RawPeer peer(server->address);
  ASSERT_EQ(peer.handshake(server->authkey)->op(), wire::Op::kWelcome);
  const std::vector<std::vector<std::string>> bad = {
      {""},              // empty body
      {"\xc1"},          // a byte msgpack never uses
      {"\x96\x05\x01"},  // truncated array
      {body(42)},        // unknown op
      {"\x92\x05"},      // a call with too few fields (truncated)
      {body(5, 1, 0)},   // a call with too few fields
      {body(5, 2, std::string("x"), std::string("add"), std::vector<int>{}, std::vector<int>{})},
      {body(5, 3, 0, 17, std::vector<int>{}, std::vector<int>{})},   // method not a string
      {body(5, 4, 0, std::string("stats"), 5, std::vector<int>{})},  // args not a list
      {body(5, 5, 0, std::string("stats"), std::vector<int>{}, 9)},  // refs not a list
      {std::string("\xdd\xff\xff\xff\xf0", 5)},                      // huge declared array
      {std::string(300, '\x91') + "\x01"},                           // nesting too deep
      {body(8), std::string(10, 'x'), std::string(10, 'y')},         // a ping with stray frames
  };
  std::uint64_t before = rejected();
  for (const auto& frames : bad) {
    peer.send(frames);
    auto in = peer.recv();
    ASSERT_TRUE(in) << "no answer to a malformed message of " << frames[0].size() << " bytes";
    // Stray frames nothing refers to are ignored: the ping is still answered.
    EXPECT_EQ(in->op(), frames.size() > 1 ? wire::Op::kPong : wire::Op::kError);
  }
  EXPECT_GE(rejected(), before + 5);
  expect_server_serves();
  // The same peer's session still works after all that.
  peer.send({body(5, 99, 0, std::string("stats"), std::vector<int>{}, std::vector<int>{})});
  auto ok = peer.recv();
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->op(), wire::Op::kReply);
}

TEST_F(Protocol, OversizedMessagesAreRefused) {
  RawPeer peer(server->address);
  ASSERT_EQ(peer.handshake(server->authkey)->op(), wire::Op::kWelcome);
  // A body over max_body_bytes (64 KiB here): answered with a limit error.
  std::string big(100 * 1024, 'a');
  peer.send({body(5, 7, 0, std::string("stats"), std::make_tuple(big), std::vector<int>{})});
  auto e = peer.error_of(peer.recv());
  EXPECT_EQ(e.kind, "limit");
  // A frame over max_message_bytes: ZeroMQ drops the connection before we read it.
  RawPeer huge(server->address);
  ASSERT_EQ(huge.handshake(server->authkey)->op(), wire::Op::kWelcome);
  huge.send({body(8), std::string(2 << 20, 'z')});
  expect_server_serves();
}

TEST_F(Protocol, ReferencesToUnknownObjectsAreRefused) {
  RawPeer peer(server->address);
  ASSERT_EQ(peer.handshake(server->authkey)->op(), wire::Op::kWelcome);
  auto holder = create_holder(peer);
  ASSERT_NE(holder, 0u);
  // "keep" with a refs list naming an object that does not exist.
  peer.send({body(5, 2, holder, std::string("keep"), std::make_tuple(msgpack::type::nil_t()),
                  std::vector<std::uint64_t>{424242})});
  auto e = peer.error_of(peer.recv());
  EXPECT_EQ(e.type, "KeyError");
  expect_server_serves();
}

// Regression (found by the fuzzer): an object reference's payload was unpacked without bounds
// and its msgpack errors escaped untyped; a reference declaring a 4 G-element array could make
// the server allocate for it.
TEST_F(Protocol, AMalformedReferenceInAnArgumentIsAProtocolError) {
  RawPeer peer(server->address);
  ASSERT_EQ(peer.handshake(server->authkey)->op(), wire::Op::kWelcome);
  auto holder = create_holder(peer);
  ASSERT_NE(holder, 0u);
  const std::string payloads[] = {
      std::string("\x8e\x08\xa4"
                  "dict",
                  7),                          // a map of 14 entries in 6 bytes
      std::string("\xdd\xff\xff\xff\xf0", 5),  // an array of 4 G elements
      std::string("\x92\x08\xa4"
                  "dict\xc0",
                  8),  // trailing bytes
  };
  std::uint64_t request = 2;
  for (const auto& payload : payloads) {
    msgpack::sbuffer b;
    msgpack::packer<msgpack::sbuffer> pk(b);
    pk.pack_array(6);
    pk.pack(5);
    pk.pack(request);
    pk.pack(holder);
    pk.pack(std::string("keep"));
    pk.pack_array(1);
    pk.pack_ext(payload.size(), wire::kExtRef);
    pk.pack_ext_body(payload.data(), static_cast<std::uint32_t>(payload.size()));
    pk.pack_array(0);
    peer.send({std::string(b.data(), b.size())});
    auto e = peer.error_of(peer.recv());
    EXPECT_EQ(e.type, "ProtocolError") << e.message;
    EXPECT_EQ(e.kind, "bad_request");
    EXPECT_NE(e.message.find("malformed object reference"), std::string::npos) << e.message;
    ++request;
  }
  expect_server_serves();
}

// Reads answers until the one to request `id` (the server answers one peer in order, so every
// earlier message has been dealt with by then); false if it never comes.
bool drain_until_reply(RawPeer& peer, std::uint64_t id) {
  for (int answers = 0; answers < 100000; ++answers) {
    auto in = peer.recv();
    if (!in) return false;
    if (in->op() == wire::Op::kReply && in->field(1).as<std::uint64_t>() == id) return true;
  }
  return false;
}

TEST_F(Protocol, AFloodOfMalformedTrafficChangesNothingForOtherClients) {
  auto victim = server->connect();
  auto counter = victim->create<Counter>("Counter", 41);
  const auto before = victim->stats();
  RawPeer attacker(server->address);
  ASSERT_EQ(attacker.handshake(server->authkey)->op(), wire::Op::kWelcome);
  RawPeer stranger(server->address);  // never authenticates

  std::mt19937 rng(20261130);  // a fixed seed: the same traffic every run
  auto random_bytes = [&](std::size_t n) {
    std::string bytes(n, '\0');
    for (auto& c : bytes) c = static_cast<char>(rng());
    return bytes;
  };
  std::vector<std::vector<std::string>> traffic;
  for (int i = 0; i < 300; ++i) traffic.push_back({random_bytes(rng() % 96)});
  for (int i = 0; i < 50; ++i)  // random frame counts
    traffic.push_back({random_bytes(rng() % 32), random_bytes(rng() % 32), random_bytes(8)});
  // Every truncation of a call that would change the victim's counter.
  std::string increment =
      body(5, 1, counter.id(), std::string("increment"), std::make_tuple(1), std::vector<int>{});
  for (std::size_t n = 0; n < increment.size(); ++n) traffic.push_back({increment.substr(0, n)});
  // A blob reference to a frame that was not sent; frames with no call in them.
  std::string blob_ref("\xd6\x01\x00\x00\x00\x07", 6);  // ext 1, index 7
  traffic.push_back({"\x96\x05\x02" + std::string("\xcf") + std::string(8, '\0') + "\xa3get\x91" +
                     blob_ref + "\x90"});
  traffic.push_back({std::string(), "stray", "frames"});
  // Huge declared lengths: str32, bin32, array32 and map32 of about 4 GiB in a few bytes.
  for (char head : {'\xdb', '\xc6', '\xdd', '\xdf'})
    traffic.push_back({std::string("\x96\x05\x03\x00") + head + "\xff\xff\xff\xf0"});
  // Unknown versions, and a HELLO with no nonce.
  traffic.push_back({body(1, 0, std::string(32, 'n'), std::string("v0"))});
  traffic.push_back({body(1, std::uint64_t{1} << 40, std::string(32, 'n'), std::string("v?"))});
  traffic.push_back({body(1, wire::kProtocolVersion)});
  // Another session's ids: a release of the victim's counter, which this peer never held, and
  // a call naming an object id that does not exist.
  traffic.push_back(
      {body(5, 4, 0, std::string("release"),
            std::make_tuple(std::vector<std::uint64_t>{counter.id()}), std::vector<int>{})});
  traffic.push_back({body(5, 5, counter.id() + 1000, std::string("increment"), std::make_tuple(1),
                          std::vector<int>{})});

  for (const auto& frames : traffic) {
    attacker.send(frames);
    stranger.send(frames);
  }
  // A last well-formed call from the attacker: once it is answered, all of the above has been.
  attacker.send({body(5, 999999, 0, std::string("stats"), std::vector<int>{}, std::vector<int>{})});
  ASSERT_TRUE(drain_until_reply(attacker, 999999)) << "the attacker's session stopped working";

  EXPECT_EQ(counter.get(), 41) << "malformed traffic changed another client's object";
  auto after = victim->stats();
  EXPECT_EQ(after.objects, before.objects);
  EXPECT_EQ(after.destroyed, before.destroyed) << "a replayed release dropped the victim's object";
  EXPECT_EQ(after.sessions, before.sessions + 1) << "the stranger got a session";
  EXPECT_GT(after.rejected, before.rejected + 300);
  EXPECT_EQ(counter.increment(1), 42);
  expect_server_serves();
}

// Regression: a server with a short session ttl forgot handshakes after one ttl, so a client
// slower than that between HELLO and AUTH could never connect.
TEST(Handshake, ASlowClientCanAuthenticateWhateverTheSessionTtl) {
  zmanager::ServerOptions options;
  options.heartbeat_interval = 50ms;
  options.session_ttl = 200ms;
  auto server = test::ServerProcess::start(options);
  RawPeer peer(server.address);
  auto nonce = wire::random_nonce();
  auto challenge = peer.hello(nonce);
  ASSERT_TRUE(challenge);
  ASSERT_EQ(challenge->op(), wire::Op::kChallenge);
  std::this_thread::sleep_for(1s);  // the slowness under test: several ttls and sweeps pass
  auto welcome = peer.auth(server.authkey, nonce, *challenge);
  ASSERT_TRUE(welcome);
  EXPECT_EQ(welcome->op(), wire::Op::kWelcome);
}

}  // namespace
