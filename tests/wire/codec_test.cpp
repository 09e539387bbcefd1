// The wire layer on its own: framing, limits, blobs, authentication proofs.
#include <gtest/gtest.h>

#include <cerrno>
#include <cmath>

#include "zmanager/wire/protocol.hpp"
#include "zmanager/zmanager.hpp"

namespace wire = zmanager::wire;

namespace {

wire::Frames frames_of(const std::string& body) {
  wire::Frames f;
  f.emplace_back(body.data(), body.size());
  return f;
}

template <class T>
std::string packed_value(const T& v) {
  msgpack::sbuffer b;
  msgpack::pack(b, v);
  return std::string(b.data(), b.size());
}

TEST(Inbound, ParsesAWellFormedMessage) {
  auto in = wire::Inbound::parse(frames_of(packed_value(std::make_tuple(8))), {});
  EXPECT_EQ(in->op(), wire::Op::kPing);
}

TEST(Inbound, TheRequestIdOfACallIsReadWithoutParsingTheRest) {
  auto peek = [](const std::string& body) { return wire::peek_request_id(body); };
  std::vector<int> none;
  for (std::uint64_t id : {std::uint64_t{7}, std::uint64_t{200}, std::uint64_t{60000},
                           std::uint64_t{4000000000}, std::uint64_t{1} << 40}) {
    auto call = packed_value(std::make_tuple(5, id, 3, std::string("get"), none, none));
    EXPECT_EQ(peek(call), id);
    // Only the head is read: what follows the id may be anything.
    std::string head = "\x96" + packed_value(std::make_tuple(5, id)).substr(1);
    EXPECT_EQ(peek(head + std::string(100, '\xc1')), id);
  }
  EXPECT_EQ(peek(packed_value(std::make_tuple(8))), 0u) << "not a call";
  EXPECT_EQ(peek(packed_value(std::make_tuple(5, 9))), 0u) << "too few fields for a call";
  EXPECT_EQ(peek(std::string("\x96\x05\xcf\x01", 4)), 0u) << "cut inside the id";
  EXPECT_EQ(peek(""), 0u);
}

TEST(Inbound, RejectsMalformedBodies) {
  wire::Limits limits;
  EXPECT_THROW(wire::Inbound::parse({}, limits), zmanager::ProtocolError);
  EXPECT_THROW(wire::Inbound::parse(frames_of(""), limits), zmanager::ProtocolError);
  EXPECT_THROW(wire::Inbound::parse(frames_of("\xc1"), limits),
               zmanager::ProtocolError);  // never used
  // Truncated: declares more elements than the body has bytes, which the declared-length bound
  // refuses before msgpack would wait for them.
  EXPECT_THROW(wire::Inbound::parse(frames_of("\x93\x01"), limits), zmanager::LimitError);
  EXPECT_THROW(wire::Inbound::parse(frames_of(packed_value(42)), limits), zmanager::ProtocolError);
  EXPECT_THROW(wire::Inbound::parse(frames_of(packed_value(std::make_tuple(99))), limits),
               zmanager::ProtocolError);  // unknown op
  EXPECT_THROW(wire::Inbound::parse(frames_of(packed_value(std::make_tuple(8)) + "x"), limits),
               zmanager::ProtocolError);  // trailing bytes
}

TEST(Inbound, AHugeDeclaredLengthIsALimitErrorNotAnAllocation) {
  // array32 claiming four billion elements, in five bytes.
  std::string body = "\xdd\xff\xff\xff\xf0";
  EXPECT_THROW(wire::Inbound::parse(frames_of(body), {}), zmanager::LimitError);
  std::string str32 = "\x91\xdb\x7f\xff\xff\xff";  // [str of 2 GiB] with no bytes
  EXPECT_THROW(wire::Inbound::parse(frames_of(str32), {}), zmanager::ProtocolError);
}

TEST(Inbound, NestingDeeperThanTheLimitIsRejected) {
  std::string deep(200, '\x91');  // [[[[...]]]]
  deep += '\x08';
  wire::Limits limits;
  limits.max_depth = 64;
  EXPECT_THROW(wire::Inbound::parse(frames_of(deep), limits), zmanager::LimitError);
}

TEST(Inbound, OversizedMessagesAreRejected) {
  wire::Limits limits;
  limits.max_body_bytes = 16;
  EXPECT_THROW(wire::Inbound::parse(frames_of(packed_value(std::vector<int>(100, 1))), limits),
               zmanager::LimitError);
  limits = {};
  limits.max_message_bytes = 10;
  wire::Frames f = frames_of(packed_value(std::make_tuple(8)));
  f.emplace_back(std::string(100, 'x'));
  EXPECT_THROW(wire::Inbound::parse(std::move(f), limits), zmanager::LimitError);
}

TEST(Encoder, LargeBytesGoToTheirOwnFrameAndComeBackWithoutACopy) {
  zmanager::Bytes big(100000);
  big.data()[0] = std::byte{7};
  wire::Frames frames;
  {
    wire::Encoder enc;
    enc.packer().pack_array(2);
    enc.pack(std::uint8_t{6});
    enc.pack(big);
    frames = wire::to_frames(enc);
  }
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[1].size(), big.size());
  EXPECT_LT(frames[0].size(), 16u);
  const void* frame_data = frames[1].data();
  auto in = wire::Inbound::parse(std::move(frames), {});
  wire::DecodeScope scope(in->blobs(), nullptr);
  auto back = in->field(1).as<zmanager::Bytes>();
  EXPECT_EQ(back.size(), big.size());
  EXPECT_EQ(back.data()[0], std::byte{7});
  EXPECT_EQ(static_cast<const void*>(back.data()), frame_data) << "the frame was copied";
}

TEST(Encoder, AReplysOwnBytesAreSentWithoutACopyOnlyWhenNothingElseSharesThem) {
  zmanager::Bytes owned(100000);
  zmanager::Bytes shared(100000);
  zmanager::Bytes other_handle = shared.share();  // as a received frame still held elsewhere
  wire::Encoder enc;
  enc.share_unshared_blobs(true);
  enc.pack(owned);
  enc.pack(shared);
  ASSERT_EQ(enc.blobs().size(), 2u);
  EXPECT_EQ(enc.blobs()[0].data(), owned.data()) << "an unshared temporary was copied";
  EXPECT_NE(enc.blobs()[1].data(), shared.data()) << "storage someone else holds was not copied";

  wire::Encoder by_default;  // a request's arguments: the caller may change them once sent
  by_default.pack(owned);
  EXPECT_NE(by_default.blobs()[0].data(), owned.data());
}

TEST(Encoder, SmallBytesStayInline) {
  wire::Encoder enc;
  enc.pack(zmanager::Bytes("abc"));
  EXPECT_TRUE(enc.blobs().empty());
}

// Replies a server step holds for one peer: one alone leaves as itself, several as a BATCH
// whose bins are their bodies in order, and the batch is empty and reusable once taken.
TEST(HeldBatch, OneBodyLeavesAloneAndSeveralLeaveAsABatchInOrder) {
  wire::HeldBatch held;
  const std::string lone = packed_value(std::make_tuple(6, 41, 2));
  held.add(lone);
  EXPECT_EQ(held.count(), 1u);
  EXPECT_EQ(held.take().to_string(), lone);
  EXPECT_EQ(held.count(), 0u);

  // Bodies around the bin format's size steps (bin 8 and bin 16 headers).
  std::vector<std::string> bodies;
  for (std::size_t size : {3, 255, 256, 70000})
    bodies.push_back(packed_value(std::make_tuple(6, size, std::string(size, 'x'))));
  for (std::size_t round = 0; round < 2; ++round) {
    for (const auto& body : bodies) held.add(body);
    ASSERT_EQ(held.count(), bodies.size());
    wire::Frames frames;
    frames.push_back(held.take());
    auto batch = wire::Inbound::parse(std::move(frames), {});
    ASSERT_EQ(batch->op(), wire::Op::kBatch);
    const auto& list = batch->field(1);
    ASSERT_EQ(list.type, msgpack::type::ARRAY);
    ASSERT_EQ(list.via.array.size, bodies.size());
    for (std::size_t i = 0; i < bodies.size(); ++i) {
      const auto& bin = list.via.array.ptr[i];
      ASSERT_EQ(bin.type, msgpack::type::BIN);
      EXPECT_EQ(std::string(bin.via.bin.ptr, bin.via.bin.size), bodies[i]) << "body " << i;
    }
    EXPECT_EQ(held.count(), 0u);
  }
}

// msgpack-c 4.1 alone would pack 2.0 as the integer 2: a float must stay a float on the wire.
TEST(Encoder, FloatsWithoutAFractionStayFloats) {
  wire::Encoder enc;
  enc.pack(2.0);
  enc.pack(-0.0);
  enc.pack(1e16);
  enc.pack(2.0f);
  const auto& body = enc.body();
  ASSERT_EQ(body.size(), 9u + 9u + 9u + 5u);
  EXPECT_EQ(static_cast<unsigned char>(body.data()[0]), 0xcb);   // float64
  EXPECT_EQ(static_cast<unsigned char>(body.data()[27]), 0xca);  // float32
  std::size_t offset = 0;
  for (double expected : {2.0, -0.0, 1e16}) {
    auto h = msgpack::unpack(body.data(), body.size(), offset);
    ASSERT_EQ(h.get().type, msgpack::type::FLOAT64);
    EXPECT_EQ(h.get().as<double>(), expected);
  }
  EXPECT_TRUE(
      std::signbit(msgpack::unpack(body.data(), body.size(), offset = 9).get().as<double>()));
}

TEST(Auth, ProofsDependOnKeyLabelAndBothNonces) {
  auto a = wire::random_nonce();
  auto b = wire::random_nonce();
  EXPECT_NE(a, b);
  auto p = wire::proof("key", wire::kServerLabel, a, b);
  EXPECT_EQ(p, wire::proof("key", wire::kServerLabel, a, b));
  EXPECT_NE(p, wire::proof("other", wire::kServerLabel, a, b));
  EXPECT_NE(p, wire::proof("key", wire::kClientLabel, a, b));
  EXPECT_NE(p, wire::proof("key", wire::kServerLabel, b, a));
  msgpack::zone z;
  msgpack::object o(msgpack::type::raw_ref(reinterpret_cast<const char*>(p.data()), 32), z);
  o.type = msgpack::type::BIN;
  o.via.bin.ptr = reinterpret_cast<const char*>(p.data());
  o.via.bin.size = 32;
  EXPECT_TRUE(wire::equal_constant_time(o, p));
  o.via.bin.size = 31;
  EXPECT_FALSE(wire::equal_constant_time(o, p));
}

TEST(Errors, ZmanagerErrorsTravelUnderPythonNames) {
  EXPECT_EQ(zmanager::error_type_name(zmanager::KeyError("k")), "KeyError");
  EXPECT_EQ(zmanager::error_type_name(std::out_of_range("x")), "std::out_of_range");
  EXPECT_THROW(zmanager::throw_remote_error("raised", "Empty", "", "get", "1"), zmanager::Empty);
  EXPECT_THROW(zmanager::throw_remote_error("auth", "X", "", "", ""),
               zmanager::AuthenticationError);
  try {
    zmanager::throw_remote_error("raised", "my::Error", "boom", "go", "7");
  } catch (const zmanager::RemoteError& e) {
    EXPECT_EQ(e.type(), "my::Error");
    EXPECT_EQ(e.method(), "go");
    EXPECT_EQ(e.object(), "7");
  }
}

TEST(Errors, OsErrorsAreTypedByErrnoAndTravelUnderPythonNames) {
  try {
    zmanager::throw_os_error(EEXIST, "psm_x");
    ADD_FAILURE() << "nothing thrown";
  } catch (const zmanager::FileExistsError& e) {
    EXPECT_EQ(e.error_code(), EEXIST);
    EXPECT_NE(std::string(e.what()).find("'psm_x'"), std::string::npos);
  }
  EXPECT_THROW(zmanager::throw_os_error(ENOENT, "a"), zmanager::FileNotFoundError);
  try {
    zmanager::throw_os_error(EINVAL, "a/b");
    ADD_FAILURE() << "nothing thrown";
  } catch (const zmanager::OSError& e) {
    EXPECT_EQ(typeid(e), typeid(zmanager::OSError));
    EXPECT_EQ(e.error_code(), EINVAL);
  }
  EXPECT_EQ(zmanager::error_type_name(zmanager::FileNotFoundError("f")), "FileNotFoundError");
  EXPECT_THROW(zmanager::throw_remote_error("raised", "FileExistsError", "x", "create", ""),
               zmanager::FileExistsError);
  EXPECT_THROW(zmanager::throw_remote_error("raised", "OSError", "x", "create", ""),
               zmanager::OSError);
}

TEST(Address, PortZeroMeansAnyFreePort) {
  EXPECT_EQ(wire::zmq_bind_endpoint("tcp://127.0.0.1:0"), "tcp://127.0.0.1:*");
  EXPECT_EQ(wire::zmq_bind_endpoint("tcp://127.0.0.1:5000"), "tcp://127.0.0.1:5000");
  EXPECT_EQ(wire::zmq_bind_endpoint("ipc:///tmp/x"), "ipc:///tmp/x");
}

}  // namespace
