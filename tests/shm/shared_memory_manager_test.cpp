// SharedMemoryManager: segments made through it are unlinked when its server stops, also the
// server of another process; a server killed with SIGKILL leaves a journal that the next start
// (or remove_leftovers) reads to remove them.
#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "process.hpp"
#include "zmanager/zmanager.hpp"

namespace {

using zmanager::SharedMemoryManager;

bool segment_exists(const std::string& name) {
  return ::access(("/dev/shm/" + name).c_str(), F_OK) == 0;
}

/// A SharedMemoryManager server in a forked process (get_server().serve_forever()), which the
/// test stops with a signal. Forked first, while the test process has no threads.
class ForkedServer {
 public:
  ForkedServer()
      : child_(test::Child::fork_reporting([](const auto& report) {
          SharedMemoryManager smm({.authkey = kKey});
          auto& server = smm.get_server();
          report(smm.address());
          server.serve_forever();
          return 0;
        })) {
    auto address = child_.read_line();
    if (!address) throw std::runtime_error("the server reported no address");
    address_ = *address;
  }

  /// A manager connected to it.
  std::unique_ptr<SharedMemoryManager> client() {
    auto smm = std::make_unique<SharedMemoryManager>(
        zmanager::ManagerOptions{.address = address_, .authkey = kKey});
    smm->connect();
    return smm;
  }

  /// Sends `sig` and returns the exit code (128 + signal when killed by it).
  std::optional<int> stop(int sig) {
    child_.signal(sig);
    return child_.wait(std::chrono::seconds(30));
  }

 private:
  static constexpr const char* kKey = "smm-test";
  test::Child child_;
  std::string address_;
};

TEST(SharedMemoryManager, SegmentsMadeThroughItAreUnlinkedAtShutdown) {
  SharedMemoryManager smm;
  smm.start();
  auto block = smm.SharedMemory(1 << 20);
  auto list = smm.ShareableList(std::vector<long>(2000));
  ASSERT_EQ(block.size(), 1u << 20);
  ASSERT_EQ(list.size(), 2000u);
  auto tracked = smm.segments();
  std::sort(tracked.begin(), tracked.end());
  std::vector<std::string> made = {block.name(), list.shm().name()};
  std::sort(made.begin(), made.end());
  EXPECT_EQ(tracked, made);
  std::memcpy(block.buf().data(), "kept", 4);

  smm.shutdown();
  EXPECT_FALSE(segment_exists(block.name()));
  EXPECT_FALSE(segment_exists(list.shm().name()));
  EXPECT_THROW(zmanager::SharedMemory{block.name()}, zmanager::FileNotFoundError);
  // What was mapped stays usable until closed.
  EXPECT_EQ(std::memcmp(block.buf().data(), "kept", 4), 0);
  EXPECT_EQ(list[1999].as<std::int64_t>(), 0);
}

TEST(SharedMemoryManager, ReleaseUnlinksOneSegmentNow) {
  SharedMemoryManager smm;
  smm.start();
  auto a = smm.SharedMemory(64);
  auto b = smm.SharedMemory(64);
  smm.release(a.name());
  EXPECT_FALSE(segment_exists(a.name()));
  EXPECT_TRUE(segment_exists(b.name()));
  EXPECT_EQ(smm.segments(), std::vector<std::string>{b.name()});
  EXPECT_THROW(smm.release(a.name()), zmanager::KeyError);  // no longer tracked
  smm.shutdown();
  EXPECT_FALSE(segment_exists(b.name()));
}

TEST(SharedMemoryManager, BadNamesAreRefusedAndTheServerKeepsItsSegments) {
  SharedMemoryManager smm;
  smm.start();
  auto kept = smm.SharedMemory(64);
  auto tracker = smm.get_shared_dynamic("zmanager.shared_memory_tracker");
  for (std::string bad : {"", "../etc/passwd", "a/b", ".", ".."})
    EXPECT_THROW(tracker.call<void>("track", bad), zmanager::ValueError) << bad;
  EXPECT_THROW(tracker.call<void>("track", 42), zmanager::TypeError);
  EXPECT_THROW(tracker.call<void>("release", "psm_00000000"), zmanager::KeyError);
  EXPECT_EQ(smm.segments(), std::vector<std::string>{kept.name()});
  smm.shutdown();
  EXPECT_FALSE(segment_exists(kept.name()));
}

TEST(SharedMemoryManager, ClientsOfAnotherProcessesServerAreTrackedToo) {
  ForkedServer server;
  std::string name = server.client()->SharedMemory(4096).name();
  EXPECT_TRUE(segment_exists(name));
  ASSERT_EQ(server.stop(SIGTERM), 0);  // serve_forever ends, the server stops: its segments go
  EXPECT_FALSE(segment_exists(name));
}

TEST(SharedMemoryManager, AKilledServersSegmentsAreRemovedByTheNextStart) {
  ForkedServer server;
  std::vector<std::string> names;
  {
    auto client = server.client();
    for (int i = 0; i < 3; ++i) names.push_back(client->SharedMemory(4096).name());
    client->release(names[2]);
  }
  // A live server's segments are not leftovers.
  auto removed_while_alive = SharedMemoryManager::remove_leftovers();
  for (const auto& n : names)
    EXPECT_EQ(std::count(removed_while_alive.begin(), removed_while_alive.end(), n), 0) << n;
  EXPECT_TRUE(segment_exists(names[0]));

  ASSERT_EQ(server.stop(SIGKILL), 128 + SIGKILL);
  EXPECT_TRUE(segment_exists(names[0]));  // what Python's manager would leak for good
  EXPECT_TRUE(segment_exists(names[1]));

  SharedMemoryManager next;
  next.start();
  EXPECT_FALSE(segment_exists(names[0]));
  EXPECT_FALSE(segment_exists(names[1]));
  next.shutdown();
  EXPECT_TRUE(SharedMemoryManager::remove_leftovers().empty());
}

TEST(SharedMemoryManager, RemoveLeftoversReportsWhatItRemoved) {
  ForkedServer server;
  std::string name = server.client()->ShareableList({1, 2, 3}).shm().name();
  ASSERT_EQ(server.stop(SIGKILL), 128 + SIGKILL);
  EXPECT_EQ(SharedMemoryManager::remove_leftovers(), std::vector<std::string>{name});
  EXPECT_FALSE(segment_exists(name));
}

}  // namespace
