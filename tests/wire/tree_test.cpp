// wire::read_tree, the reader of message bodies: the tree msgpack-c's unpacker would build for
// every format, the same refusals under the same limits, and no more nodes than bytes.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "request_decoder.hpp"
#include "zmanager/errors.hpp"
#include "zmanager/wire/protocol.hpp"
#include "zmanager/wire/tree.hpp"

namespace wire = zmanager::wire;

namespace {

bool agrees(const std::string& body, std::size_t max_depth = 64) {
  return zmanager::fuzz::tree_agrees_with_msgpack(
      reinterpret_cast<const std::uint8_t*>(body.data()), body.size(), max_depth);
}

template <class T>
std::string packed(const T& v) {
  msgpack::sbuffer buf;
  msgpack::pack(buf, v);
  return {buf.data(), buf.size()};
}

// Throws what read_tree throws for `body` under default limits.
void read(const std::string& body) {
  wire::TreeArena arena;
  wire::read_tree(body, wire::Limits{}, arena);
}

std::string bytes(std::initializer_list<int> list) {
  std::string s;
  for (int b : list) s += static_cast<char>(b);
  return s;
}

TEST(ReadTree, ReadsEveryFormatAsMsgpackDoes) {
  const std::string big(70000, 'x');
  std::map<std::string, int> pairs{{"a", 1}, {"b", -2}};
  std::map<int, int> many;
  for (int i = 0; i < 20; ++i) many[i] = i * i;
  const std::vector<std::string> bodies = {
      packed(msgpack::type::nil_t()), packed(true), packed(false),
      // Integers of every width, both signs.
      packed(0), packed(127), packed(128), packed(65535), packed(65536), packed(4294967296ull),
      packed(std::numeric_limits<std::uint64_t>::max()), packed(-1), packed(-32), packed(-33),
      packed(-129), packed(-40000), packed(-3000000000ll),
      packed(std::numeric_limits<std::int64_t>::min()),
      // Floats, strings and bins of every length class.
      packed(1.5f), packed(-2.25), packed(std::string("")), packed(std::string(31, 's')),
      packed(std::string(32, 's')), packed(std::string(300, 's')), packed(big),
      packed(std::vector<char>(5, 'b')), packed(std::vector<char>(300, 'b')),
      packed(std::vector<char>(big.begin(), big.end())),
      // Containers: empty, fix, 16- and 32-bit counts, nested.
      packed(std::vector<int>{}), packed(std::vector<int>(15, 7)), packed(std::vector<int>(16, 7)),
      packed(std::vector<int>(70000, 1)), packed(pairs), packed(many),
      packed(std::make_tuple(5, 17, 3, "add", std::make_tuple(1, 2), std::vector<int>{})),
      packed(std::vector<std::vector<std::string>>{{"x"}, {}, {"y", "z"}}),
      // Encodings msgpack-c's packer does not choose, as other languages' may: uint64 for a
      // small value, int8 for a positive one, str32 for a short string, array32 and map32 of
      // one element, and every ext form.
      bytes({0xcf, 0, 0, 0, 0, 0, 0, 0, 5}), bytes({0xd0, 0x05}), bytes({0xd1, 0xff, 0x00}),
      bytes({0xd2, 0x80, 0, 0, 0}), bytes({0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe}),
      bytes({0xdb, 0, 0, 0, 2, 'h', 'i'}), bytes({0xd9, 1, 'z'}), bytes({0xda, 0, 1, 'z'}),
      bytes({0xc5, 0, 1, 9}), bytes({0xc6, 0, 0, 0, 1, 9}), bytes({0xdd, 0, 0, 0, 1, 0xc0}),
      bytes({0xdf, 0, 0, 0, 1, 0xa1, 'k', 0x07}), bytes({0xde, 0, 1, 0x01, 0x02}),
      bytes({0xd4, 7, 1}), bytes({0xd5, 7, 1, 2}), bytes({0xd6, 7, 1, 2, 3, 4}),
      bytes({0xd7, 7, 1, 2, 3, 4, 5, 6, 7, 8}),
      bytes({0xd8, 0xff, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}),
      bytes({0xc7, 0, 7}), bytes({0xc7, 2, 7, 1, 2}), bytes({0xc8, 0, 1, 7, 1}),
      bytes({0xc9, 0, 0, 0, 1, 7, 1}), bytes({0xca, 0x7f, 0xc0, 0, 0}),  // float32 NaN
      bytes({0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 1})};                      // float64 NaN
  for (const auto& body : bodies) {
    EXPECT_TRUE(agrees(body)) << "body of " << body.size() << " bytes, first 0x" << std::hex
                              << (static_cast<int>(body[0]) & 0xff);
    EXPECT_NO_THROW(read(body));
  }
}

TEST(ReadTree, StringsBinsAndExtsPointIntoTheBody) {
  std::string body = packed(std::make_tuple(std::string("name"), std::vector<char>(3, 'b')));
  body += bytes({0xd4, 5, 9});
  body[0] = static_cast<char>(0x93);  // the pair becomes a triple with the ext
  wire::TreeArena arena;
  msgpack::object tree = wire::read_tree(body, wire::Limits{}, arena);
  ASSERT_EQ(tree.type, msgpack::type::ARRAY);
  ASSERT_EQ(tree.via.array.size, 3u);
  const char* begin = body.data();
  const char* end = begin + body.size();
  for (const char* p : {tree.via.array.ptr[0].via.str.ptr, tree.via.array.ptr[1].via.bin.ptr,
                        tree.via.array.ptr[2].via.ext.ptr})
    EXPECT_TRUE(p >= begin && p < end);
  EXPECT_EQ(tree.via.array.ptr[2].via.ext.type(), 5);
  EXPECT_EQ(tree.via.array.ptr[2].via.ext.size, 1u);
  EXPECT_EQ(tree.via.array.ptr[2].via.ext.data()[0], 9);
}

TEST(ReadTree, EveryCutOfAMessageIsRefusedWithATypedError) {
  const std::string whole =
      packed(std::make_tuple(5, 300, 7, std::string("setitem"),
                             std::make_tuple(std::string(40, 'k'), std::vector<int>{1, -2, 70000}),
                             std::map<std::string, double>{{"x", 0.5}}));
  ASSERT_NO_THROW(read(whole));
  for (std::size_t n = 0; n < whole.size(); ++n) {
    const std::string cut = whole.substr(0, n);
    EXPECT_THROW(read(cut), zmanager::Error) << n;
    EXPECT_TRUE(agrees(cut)) << n;
  }
  EXPECT_THROW(read(whole + '\0'), zmanager::ProtocolError);  // a byte left over
  EXPECT_THROW(read(bytes({0xc1})), zmanager::ProtocolError);
}

TEST(ReadTree, NestingIsBoundedByTheDepthLimit) {
  wire::Limits limits;
  limits.max_depth = 64;
  auto nested = [](std::size_t depth) { return std::string(depth, '\x91') + '\x01'; };
  wire::TreeArena arena;
  msgpack::object tree = wire::read_tree(nested(64), limits, arena);
  for (int level = 0; level < 64; ++level) {
    ASSERT_EQ(tree.type, msgpack::type::ARRAY) << level;
    tree = tree.via.array.ptr[0];
  }
  EXPECT_EQ(tree.as<int>(), 1);
  wire::TreeArena other;
  EXPECT_THROW(wire::read_tree(nested(65), limits, other), zmanager::LimitError);
  // Past the depth the stack keeps on the C stack, with a limit that allows it.
  limits.max_depth = 200;
  wire::TreeArena deep;
  EXPECT_NO_THROW(wire::read_tree(nested(200), limits, deep));
  EXPECT_TRUE(agrees(nested(64), 64));
  EXPECT_TRUE(agrees(nested(65), 64));
  EXPECT_TRUE(agrees(nested(200), 200));
  EXPECT_TRUE(agrees(std::string(150, '\x90'), 64));  // empty arrays in a row: trailing bytes
}

TEST(ReadTree, DeclaredCountsAreBoundedByTheBody) {
  // More elements than the body has bytes: a limit, as msgpack-c's unpack_limits make it.
  EXPECT_THROW(read(bytes({0x93, 0x01})), zmanager::LimitError);
  EXPECT_THROW(read(bytes({0xdd, 0xff, 0xff, 0xff, 0xf0})), zmanager::LimitError);
  EXPECT_THROW(read(bytes({0x82, 0x01})), zmanager::LimitError);  // 2 pairs in 2 bytes
  // Within the length but past what is left, counting what the open containers still wait
  // for: cut short, refused before the nodes are allocated. Each of these 64 array32s claims
  // almost the whole body, which msgpack-c allocated at every level (64 times 24 bytes per
  // byte of body); here the second one is refused.
  std::string body;
  const std::uint32_t claimed = 1u << 20;
  for (int level = 0; level < 64; ++level)
    body += bytes({0xdd, 0, static_cast<int>((claimed >> 16) & 0xff), 0, 0});
  body.resize(claimed + 64, '\x01');
  EXPECT_THROW(read(body), zmanager::ProtocolError);
  EXPECT_TRUE(agrees(bytes({0x92, 0x01})));
  EXPECT_TRUE(agrees(bytes({0x92, 0x91, 0x01})));
}

TEST(ReadTree, BigTreesLeaveTheArenaForItsZone) {
  std::vector<std::tuple<int, std::string>> rows;
  for (int i = 0; i < 2000; ++i) rows.emplace_back(i, std::to_string(i));
  const std::string body = packed(rows);
  wire::TreeArena arena;
  msgpack::object tree = wire::read_tree(body, wire::Limits{}, arena);
  auto back = tree.as<std::vector<std::tuple<int, std::string>>>();
  EXPECT_EQ(back, rows);
  EXPECT_TRUE(agrees(body));
}

TEST(ReadTree, AgreesWithMsgpackOnRandomBytes) {
  // Bytes drawn mostly from format headers and small values, so that many form whole or nearly
  // whole values; a fixed seed keeps the test deterministic (the fuzzer explores further).
  std::mt19937 random(20261201);
  const std::vector<int> common = {0x00, 0x01, 0x7f, 0x80, 0x81, 0x82, 0x90, 0x91, 0x92, 0x93,
                                   0xa0, 0xa1, 0xa3, 0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc7,
                                   0xc9, 0xca, 0xcb, 0xcc, 0xcd, 0xd0, 0xd3, 0xd4, 0xd8, 0xd9,
                                   0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xe0, 0xff};
  std::size_t accepted = 0;
  for (int round = 0; round < 50000; ++round) {
    std::string body(random() % 24, '\0');
    for (auto& c : body)
      c = static_cast<char>(random() % 4 == 0 ? random() % 256 : common[random() % common.size()]);
    ASSERT_TRUE(agrees(body, 1 + random() % 6)) << "round " << round;
    try {
      read(body);
      ++accepted;
    } catch (const zmanager::Error&) {
    }
  }
  // Enough of both kinds for the comparison to mean something.
  EXPECT_GT(accepted, 1000u);
  EXPECT_LT(accepted, 49000u);
}

}  // namespace
