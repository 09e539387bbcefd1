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

namespace {

// Counts copies too: a vector that grows copies its elements.
struct Element {
  static inline int alive = 0;
  explicit Element(int v) : value(v) { ++alive; }
  Element(const Element& other) : value(other.value) { ++alive; }
  Element& operator=(const Element&) = default;
  ~Element() { --alive; }
  int value;
};

using SmallArray = std::vector<Element, wire::RecyclingArray<Element, 2>>;

TEST(RecyclingArray, VectorsOfAnySizeHoldTheirElements) {
  {
    std::vector<SmallArray> vectors;
    for (int n = 0; n < 40; ++n) {  // grown one at a time: past the kept size, and back
      SmallArray v;
      for (int i = 0; i < n; ++i) v.emplace_back(i);
      vectors.push_back(std::move(v));
    }
    for (int n = 0; n < 40; ++n) {
      ASSERT_EQ(vectors[n].size(), static_cast<std::size_t>(n));
      for (int i = 0; i < n; ++i) EXPECT_EQ(vectors[n][i].value, i);
    }
  }
  EXPECT_EQ(Element::alive, 0);
}

TEST(RecyclingArray, ASmallArrayFreedIsHandedOutAgainWhateverItsSize) {
#if defined(ZMANAGER_RECYCLING_OFF)
  GTEST_SKIP() << "under a sanitizer every allocation is the system's own";
#else
  const void* first = nullptr;
  {
    SmallArray two;
    two.reserve(2);
    two.emplace_back(1);
    first = two.data();
  }
  SmallArray one;
  one.reserve(1);  // one element takes a block of two as well
  one.emplace_back(2);
  EXPECT_EQ(static_cast<const void*>(one.data()), first);
  EXPECT_EQ(one[0].value, 2);
#endif
}

}  // namespace
