// ShareableList: Python's layout byte for byte, Python's rules for slots and kinds, and Debian's
// python3 reading and writing the same list.
#include <gtest/gtest.h>

#include <cstring>
#include <sstream>

#include "python.hpp"
#include "zmanager/zmanager.hpp"

namespace {

using zmanager::Bytes;
using zmanager::ShareableList;
using zmanager::Value;

std::string hex_of(std::span<const std::byte> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (auto b : bytes) {
    out += kDigits[std::to_integer<unsigned>(b) >> 4];
    out += kDigits[std::to_integer<unsigned>(b) & 15];
  }
  return out;
}

// The seed's list: every kind once.
ShareableList seed_list() {
  return ShareableList({"howdy", Bytes("HoWdY"), -273.154, 100, nullptr, true, 42});
}

TEST(ShareableList, HoldsEveryKindWithPythonsFormats) {
  auto sl = seed_list();
  EXPECT_EQ(sl.size(), 7u);
  EXPECT_EQ(sl.format(), "8s8sdqxxxxxx?xxxxxxxx?q");
  auto items = sl.to_vector();
  ASSERT_EQ(items.size(), 7u);
  EXPECT_EQ(items[0].as<std::string>(), "howdy");
  EXPECT_EQ(items[1].as<Bytes>(), Bytes("HoWdY"));
  EXPECT_DOUBLE_EQ(items[2].as<double>(), -273.154);
  EXPECT_EQ(items[3].as<std::int64_t>(), 100);
  EXPECT_TRUE(items[4].is_none());
  EXPECT_EQ(items[5].as<bool>(), true);
  EXPECT_EQ(sl[-1].as<std::int64_t>(), 42);  // negative indices count from the end
  EXPECT_EQ(sl.index(42), 6u);
  EXPECT_EQ(sl.count(100), 1u);
  EXPECT_EQ(sl.count(7), 0u);
  sl.shm().unlink();
}

TEST(ShareableList, ItemsChangeKindWithinTheirSlots) {
  auto sl = seed_list();
  sl[2] = -78.5;
  EXPECT_DOUBLE_EQ(sl[2].as<double>(), -78.5);
  sl[3] = "abcdefgh";  // an int's 8-byte slot takes 8 bytes of text
  EXPECT_EQ(sl[3].as<std::string>(), "abcdefgh");
  EXPECT_EQ(sl.format().substr(0, 20), "8s8sd8sxxxxxx?xxxxxx");
  sl[0] = 7;  // a text slot takes a number, and text again
  EXPECT_EQ(sl[0].as<std::int64_t>(), 7);
  sl[0] = Bytes("xy");
  EXPECT_EQ(sl[0].as<Bytes>(), Bytes("xy"));
  sl[4] = false;
  sl[5] = nullptr;
  EXPECT_EQ(sl[4].as<bool>(), false);
  EXPECT_TRUE(static_cast<Value>(sl[5]).is_none());
  sl.shm().unlink();
}

TEST(ShareableList, BadItemsAndIndicesAreTypedErrors) {
  auto sl = seed_list();
  EXPECT_THROW(sl[0] = "123456789", zmanager::ValueError);  // longer than its 8-byte slot
  EXPECT_THROW(sl[3] = Bytes(std::string(9, 'x')), zmanager::ValueError);
  EXPECT_THROW(sl[7] = 1, zmanager::IndexError);
  EXPECT_THROW(sl.get(-8), zmanager::IndexError);
  EXPECT_THROW(sl[1] = Value(Value::Array{1, 2}), zmanager::TypeError);
  EXPECT_THROW(sl[1] = std::numeric_limits<std::uint64_t>::max(), zmanager::ValueError);
  EXPECT_THROW(sl.index("absent"), zmanager::ValueError);
  EXPECT_EQ(sl[0].as<std::string>(), "howdy");  // nothing was written by the failed calls
  EXPECT_THROW(ShareableList({Value(Value::Map{})}), zmanager::TypeError);
  EXPECT_THROW(ShareableList::attach(sl.shm().name() + "_missing"), zmanager::FileNotFoundError);
  sl.shm().unlink();
}

TEST(ShareableList, ASegmentThatIsNotAListIsRefused) {
  zmanager::SharedMemory junk(std::nullopt, true, 64);
  std::int64_t huge = 1'000'000;
  std::memcpy(junk.buf().data(), &huge, sizeof huge);
  EXPECT_THROW(ShareableList::attach(junk.name()), zmanager::ValueError);
  std::int64_t header[3] = {1, 0, 4};  // one item whose slot is shorter than a word
  std::memcpy(junk.buf().data(), header, sizeof header);
  EXPECT_THROW(ShareableList::attach(junk.name()), zmanager::ValueError);
  // A valid list whose format was overwritten: reading that item says so.
  auto sl = ShareableList({1, 2});
  auto buf = sl.shm().buf();
  std::memcpy(buf.data() + 8 * 4 + 16, "zz\0\0\0\0\0\0", 8);
  EXPECT_THROW(sl.get(0), zmanager::ValueError);
  EXPECT_EQ(sl[1].as<std::int64_t>(), 2);
  junk.unlink();
  sl.shm().unlink();
}

TEST(ShareableList, NonAsciiTextGetsSlotsByItsBytes) {
  // Python sizes a str slot by characters and cuts longer UTF-8 short; zmanager by bytes.
  ShareableList sl({"ééééééé"});  // 7 characters, 14 bytes
  EXPECT_EQ(sl.format(), "16s");
  EXPECT_EQ(sl[0].as<std::string>(), "ééééééé");
  sl.shm().unlink();
}

TEST(ShareableList, RangesOfPlainValuesMakeLists) {
  ShareableList sl(std::vector<long>(2000, 5));
  EXPECT_EQ(sl.size(), 2000u);
  EXPECT_EQ(sl.count(5), 2000u);
  ShareableList empty(std::vector<Value>{});
  EXPECT_EQ(empty.size(), 0u);
  EXPECT_EQ(ShareableList::attach(empty.shm().name()).size(), 0u);
  sl.shm().unlink();
  empty.shm().unlink();
}

TEST(ShareableListInterop, TheSameListHasTheSameBytesAsPythons) {
  auto lines = test::run_python(
      std::string(test::kPythonSharedMemoryPrelude) +
      "sl = shared_memory.ShareableList(['howdy', b'HoWdY', -273.154, 100, None, True, 42, "
      "'exactly8', b'', False, -1, 2.5e300, 'a' * 17])\n"
      "print(bytes(sl.shm.buf).hex())\n"
      "sl.shm.close(); sl.shm.unlink()\n");
  ASSERT_EQ(lines.size(), 1u);
  ShareableList sl({"howdy", Bytes("HoWdY"), -273.154, 100, nullptr, true, 42, "exactly8",
                    Bytes(""), false, -1, 2.5e300, std::string(17, 'a')});
  EXPECT_EQ(hex_of(sl.shm().buf()), lines[0]);
  sl.shm().unlink();
}

TEST(ShareableListInterop, PythonReadsAndWritesAListCppMade) {
  auto sl = seed_list();
  sl[3] = "abc";
  ShareableList wide({"ééééééé"});
  auto lines =
      test::run_python(std::string(test::kPythonSharedMemoryPrelude) +
                       "sl = shared_memory.ShareableList(name='" + sl.shm().name() +
                       "')\n"
                       "keep(sl.shm)\n"
                       "print(list(sl)); print(sl.format)\n"
                       "sl[0] = 'hi'; sl[1] = None; sl[2] = -78.5; sl[4] = 7; sl[6] = b'12345678'\n"
                       "w = shared_memory.ShareableList(name='" +
                       wide.shm().name() +
                       "')\n"
                       "keep(w.shm)\n"
                       "print(w[0] == 'é' * 7)\n");
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0], "['howdy', b'HoWdY', -273.154, 'abc', None, True, 42]");
  EXPECT_EQ(lines[1], "8s8sd8sxxxxxx?xxxxxxxx?q");
  EXPECT_EQ(lines[2], "True");
  EXPECT_EQ(sl[0].as<std::string>(), "hi");
  EXPECT_TRUE(sl.get(1).is_none());
  EXPECT_DOUBLE_EQ(sl[2].as<double>(), -78.5);
  EXPECT_EQ(sl[4].as<std::int64_t>(), 7);
  EXPECT_EQ(sl[6].as<Bytes>(), Bytes("12345678"));
  EXPECT_EQ(sl.format(), "8sxxxxxx?xd8sqxxxxxxx?8s");
  sl.shm().unlink();
  wide.shm().unlink();
}

TEST(ShareableListInterop, CppAttachesToAListPythonMade) {
  auto lines = test::run_python(
      std::string(test::kPythonSharedMemoryPrelude) +
      "sl = shared_memory.ShareableList(['x' * 20, b'\\x00\\x01', 3.5, -7, None, False])\n"
      "keep(sl.shm)\n"
      "print(sl.shm.name)\n");
  ASSERT_EQ(lines.size(), 1u);
  auto sl = ShareableList::attach(lines[0]);
  ASSERT_EQ(sl.size(), 6u);
  EXPECT_EQ(sl[0].as<std::string>(), std::string(20, 'x'));
  EXPECT_EQ(sl[1].as<Bytes>(), Bytes("\x00\x01", 2));
  EXPECT_DOUBLE_EQ(sl[2].as<double>(), 3.5);
  EXPECT_EQ(sl[3].as<std::int64_t>(), -7);
  EXPECT_TRUE(sl.get(4).is_none());
  EXPECT_EQ(sl[5].as<bool>(), false);
  sl[0] = std::string(24, 'y');  // the whole 24-byte slot
  EXPECT_EQ(sl[0].as<std::string>(), std::string(24, 'y'));
  EXPECT_THROW(sl[0] = std::string(25, 'y'), zmanager::ValueError);
  sl.shm().unlink();
}

}  // namespace
