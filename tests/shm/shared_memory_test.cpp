// SharedMemory against Python's rules, across real processes, and with Debian's python3 on the
// other side of the same segment.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "process.hpp"
#include "python.hpp"
#include "zmanager/zmanager.hpp"

namespace {

using zmanager::SharedMemory;

// A name no other test run uses.
std::string unique_name(const char* what) {
  return std::string("zmtest_") + what + "_" + std::to_string(::getpid());
}

void write_text(SharedMemory& shm, const std::string& text) {
  std::memcpy(shm.buf().data(), text.data(), text.size());
}

std::string read_text(const SharedMemory& shm, std::size_t n) {
  return std::string(reinterpret_cast<const char*>(shm.buf().data()), n);
}

TEST(SharedMemory, CreatesUnderAFreshPythonStyleNameAndZeroFills) {
  SharedMemory shm(std::nullopt, true, 10);
  EXPECT_EQ(shm.name().size(), 12u);
  EXPECT_EQ(shm.name().rfind("psm_", 0), 0u);
  EXPECT_TRUE(std::all_of(shm.name().begin() + 4, shm.name().end(),
                          [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); }));
  ASSERT_EQ(shm.size(), 10u);
  ASSERT_EQ(shm.buf().size(), 10u);
  EXPECT_TRUE(std::all_of(shm.buf().begin(), shm.buf().end(),
                          [](std::byte b) { return b == std::byte{0}; }));
  SharedMemory other(std::nullopt, true, 10);
  EXPECT_NE(other.name(), shm.name());
  shm.unlink();
  other.unlink();
}

TEST(SharedMemory, AttachingByNameSeesTheSameBytesAndTakesTheSegmentsSize) {
  SharedMemory made(unique_name("attach"), true, 4096 + 3);
  SharedMemory seen(made.name());
  EXPECT_EQ(seen.size(), 4096u + 3);
  write_text(made, "howdy");
  EXPECT_EQ(read_text(seen, 5), "howdy");
  made.buf()[4098] = std::byte{42};
  EXPECT_EQ(seen.buf()[4098], std::byte{42});
  made.unlink();
}

TEST(SharedMemory, ErrorsAreTypedAsPythonsAre) {
  std::string name = unique_name("errors");
  SharedMemory made(name, true, 8);
  EXPECT_THROW(SharedMemory(name, true, 8), zmanager::FileExistsError);
  EXPECT_THROW(SharedMemory(name + "_missing"), zmanager::FileNotFoundError);
  EXPECT_THROW(SharedMemory(std::nullopt, true, 0), zmanager::ValueError);
  EXPECT_THROW(SharedMemory(std::nullopt, true, -1), zmanager::ValueError);
  EXPECT_THROW(SharedMemory(name, false, -5), zmanager::ValueError);
  EXPECT_THROW(SharedMemory(std::nullopt, false, 8), zmanager::ValueError);
  EXPECT_THROW(SharedMemory("a/b", true, 8), zmanager::OSError);  // POSIX names hold one '/'
  try {
    SharedMemory missing(name + "_missing");
    ADD_FAILURE() << "attached to a missing segment";
  } catch (const zmanager::FileNotFoundError& e) {
    EXPECT_EQ(e.error_code(), ENOENT);
    EXPECT_NE(std::string(e.what()).find(name + "_missing"), std::string::npos);
  }
  made.unlink();
  EXPECT_THROW(made.unlink(), zmanager::FileNotFoundError);  // unlink once
}

TEST(SharedMemory, AnUnlinkedSegmentStaysMappedButCannotBeAttached) {
  SharedMemory made(std::nullopt, true, 16);
  SharedMemory seen(made.name());
  made.unlink();
  EXPECT_THROW(SharedMemory{made.name()}, zmanager::FileNotFoundError);
  write_text(made, "still here");
  EXPECT_EQ(read_text(seen, 10), "still here");
}

TEST(SharedMemory, CloseUnmapsOnceAndLeavesTheSegment) {
  SharedMemory made(std::nullopt, true, 16);
  write_text(made, "kept");
  std::string name = made.name();
  made.close();
  made.close();  // idempotent
  EXPECT_TRUE(made.closed());
  EXPECT_THROW(made.buf(), zmanager::ValueError);
  SharedMemory again(name);
  EXPECT_EQ(read_text(again, 4), "kept");
  made.unlink();  // unlinking needs only the name
}

TEST(SharedMemory, DestructionUnmapsButNeverUnlinks) {
  std::string name;
  {
    SharedMemory made(std::nullopt, true, 16);
    name = made.name();
    write_text(made, "survives");
  }
  SharedMemory again(name);
  EXPECT_EQ(read_text(again, 8), "survives");
  again.unlink();
}

TEST(SharedMemory, MovedSegmentsKeepOneMapping) {
  SharedMemory made(std::nullopt, true, 16);
  std::string name = made.name();
  SharedMemory moved(std::move(made));
  EXPECT_EQ(moved.name(), name);
  EXPECT_EQ(moved.size(), 16u);
  SharedMemory assigned(std::nullopt, true, 8);
  assigned.unlink();
  assigned = std::move(moved);
  EXPECT_EQ(assigned.name(), name);
  write_text(assigned, "moved");
  EXPECT_EQ(read_text(SharedMemory(name), 5), "moved");
  assigned.unlink();
}

TEST(SharedMemory, AnotherProcessWritesWhatThisOneReads) {
  SharedMemory made(std::nullopt, true, 1 << 20);
  std::string name = made.name();
  auto child = test::Child::fork([&] {
    SharedMemory seen(name);
    if (seen.size() != (1u << 20)) return 2;
    for (std::size_t i = 0; i < seen.size(); ++i) seen.buf()[i] = std::byte(i % 251);
    return 0;
  });
  ASSERT_EQ(child.wait(std::chrono::seconds(30)), 0);
  for (std::size_t i = 0; i < made.size(); i += 4093)
    ASSERT_EQ(made.buf()[i], std::byte(i % 251)) << i;
  made.unlink();
}

using test::kPythonSharedMemoryPrelude;
using test::run_python;

TEST(SharedMemoryInterop, PythonAttachesToASegmentCppMadeReadsAndWrites) {
  SharedMemory made(std::nullopt, true, 64);
  write_text(made, "from C++");
  auto lines = run_python(std::string(kPythonSharedMemoryPrelude) +
                          "shm = shared_memory.SharedMemory(name='" + made.name() +
                          "')\n"
                          "keep(shm)\n"
                          "print(shm.size, bytes(shm.buf[:8]).decode())\n"
                          "shm.buf[8:19] = b' and Python'\n"
                          "shm.close()\n");
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0], "64 from C++");
  EXPECT_EQ(read_text(made, 19), "from C++ and Python");
  made.unlink();  // still there: the Python side did not remove it on exit
}

TEST(SharedMemoryInterop, CppAttachesToASegmentPythonMade) {
  auto lines = run_python(std::string(kPythonSharedMemoryPrelude) +
                          "shm = shared_memory.SharedMemory(create=True, size=5000)\n"
                          "keep(shm)\n"
                          "shm.buf[:11] = b'from Python'\n"
                          "shm.buf[4999] = 7\n"
                          "print(shm.name)\n"
                          "shm.close()\n");
  ASSERT_EQ(lines.size(), 1u);
  SharedMemory seen(lines[0]);
  EXPECT_GE(seen.size(), 5000u);  // the page-rounded size on some systems; exact on Linux
  EXPECT_EQ(read_text(seen, 11), "from Python");
  EXPECT_EQ(seen.buf()[4999], std::byte{7});
  seen.unlink();
  EXPECT_THROW(SharedMemory{lines[0]}, zmanager::FileNotFoundError);
}

}  // namespace
