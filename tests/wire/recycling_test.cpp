// The allocator for per-call objects: blocks are reused by the thread that frees them, objects
// are made and destroyed as with make_shared, and a block made on one thread may be freed on
// another.
#include <gtest/gtest.h>

#include <memory>
#include <thread>
#include <vector>

#include "zmanager/wire/recycling.hpp"

namespace wire = zmanager::wire;

namespace {

struct Counted {
  static inline int alive = 0;
  explicit Counted(int v) : value(v) { ++alive; }
  ~Counted() { --alive; }
  int value;
  char payload[200];
};

std::shared_ptr<Counted> make(int v) {
  return std::allocate_shared<Counted>(wire::Recycling<Counted>(), v);
}

TEST(Recycling, ObjectsAreMadeAndDestroyedAsWithMakeShared) {
  {
    std::vector<std::shared_ptr<Counted>> burst;
    for (int i = 0; i < 600; ++i) burst.push_back(make(i));  // past the bound on kept blocks
    EXPECT_EQ(Counted::alive, 600);
    for (int i = 0; i < 600; ++i) EXPECT_EQ(burst[i]->value, i);
  }
  EXPECT_EQ(Counted::alive, 0);
}

TEST(Recycling, AFreedBlockIsHandedOutAgainByTheThreadThatFreedIt) {
#if defined(ZMANAGER_RECYCLING_OFF)
  GTEST_SKIP() << "under a sanitizer every allocation is the system's own";
#else
  const void* first = make(1).get();  // freed at once
  auto second = make(2);
  EXPECT_EQ(second.get(), first);
  EXPECT_EQ(second->value, 2);
#endif
}

TEST(Recycling, ABlockMadeOnOneThreadCanBeFreedOnAnotherAndReusedThere) {
  auto made_here = make(7);
  const void* address = made_here.get();
  const void* reused = nullptr;
  std::thread other([&] {
    made_here.reset();  // the last reference: freed on this thread
    auto again = make(8);
    reused = again.get();
    EXPECT_EQ(again->value, 8);
  });
  other.join();
  EXPECT_EQ(Counted::alive, 0);
#if !defined(ZMANAGER_RECYCLING_OFF)
  EXPECT_EQ(reused, address);
#else
  (void)address;
  (void)reused;
#endif
}

}  // namespace
