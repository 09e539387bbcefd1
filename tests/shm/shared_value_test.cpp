// shared_value / shared_array: updates seen across forked processes, increments that are not
// lost under the lock, and a lock whose holder was killed.
#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <mutex>

#include "process.hpp"
#include "zmanager/zmanager.hpp"

namespace {

using namespace std::chrono_literals;

TEST(SharedValue, AChildsWriteIsSeenByItsParent) {
  auto num = zmanager::shared_value<double>(10.0);
  auto nums = zmanager::shared_array<int>({1, 2, 3, 4, 5});
  auto child = test::Child::fork([&] {
    num.set(3.5);
    nums.set(2, 9999);
    return 0;
  });
  ASSERT_EQ(child.wait(30s), 0);
  EXPECT_EQ(num.get(), 3.5);
  EXPECT_EQ(nums.to_vector(), (std::vector<int>{1, 2, 9999, 4, 5}));
  EXPECT_EQ(nums.size(), 5u);
  EXPECT_THROW(nums.get(5), zmanager::IndexError);
  EXPECT_THROW(nums.set(5, 0), zmanager::IndexError);
}

TEST(SharedValue, IncrementsUnderTheLockAreNeverLost) {
  auto counter = zmanager::shared_value<std::int64_t>(0);
  constexpr int kChildren = 4, kEach = 5000;
  std::vector<test::Child> children;
  for (int c = 0; c < kChildren; ++c)
    children.push_back(test::Child::fork([&] {
      for (int i = 0; i < kEach; ++i) counter.update([](std::int64_t& v) { ++v; });
      // Python's spelling: the lock held around a read and a write (it is recursive).
      for (int i = 0; i < kEach; ++i) {
        std::lock_guard guard(counter.get_lock());
        counter.set(counter.get() + 1);
      }
      return 0;
    }));
  for (auto& c : children) ASSERT_EQ(c.wait(60s), 0);
  EXPECT_EQ(counter.get(), 2 * kChildren * kEach);
}

TEST(SharedValue, AKilledHoldersLockIsTakenOver) {
  auto value = zmanager::shared_value<int>(1);
  auto holder = test::Child::fork_reporting([&](const auto& report) {
    value.get_lock().lock();
    value.raw()[0] = 2;  // mid-update when it dies
    report("holding");
    ::pause();
    return 0;
  });
  ASSERT_EQ(holder.read_line(), "holding");
  EXPECT_FALSE(value.get_lock().try_lock());  // held by the live child
  holder.signal(SIGKILL);
  ASSERT_EQ(holder.wait(30s), 128 + SIGKILL);
  ASSERT_TRUE(value.get_lock().try_lock_for(10s));  // taken over, not deadlocked
  EXPECT_EQ(value.get_lock().recovered(), 1u);
  EXPECT_EQ(*value.raw(), 2);  // what the dead holder left
  value.get_lock().unlock();
  value.set(3);  // usable as before
  EXPECT_EQ(value.get(), 3);
}

TEST(SharedValue, WithoutALockThereIsNoLockToTake) {
  auto plain = zmanager::shared_value<int>(5, /*lock=*/false);
  EXPECT_THROW(plain.get_lock(), zmanager::ValueError);
  plain.set(6);
  EXPECT_EQ(plain.get(), 6);
  auto copy = plain;  // copies share the value
  copy.set(7);
  EXPECT_EQ(plain.get(), 7);
}

}  // namespace
