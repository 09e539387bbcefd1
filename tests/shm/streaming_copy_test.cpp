// The frame producer's copy (examples/shared_memory/streaming_copy.hpp): the same bytes as
// memcpy whatever the alignment of either side and the size, the edges included.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "shared_memory/streaming_copy.hpp"

namespace {

TEST(StreamingCopy, CopiesEveryByteAtAnyAlignmentAndSize) {
  std::vector<unsigned char> from(4096 + 64), to(4096 + 128);
  for (std::size_t i = 0; i < from.size(); ++i) from[i] = static_cast<unsigned char>(i * 31 + 7);
  for (std::size_t size : {0u, 1u, 15u, 16u, 17u, 63u, 64u, 65u, 127u, 128u, 1000u, 4096u}) {
    for (std::size_t to_offset = 0; to_offset < 20; ++to_offset) {
      for (std::size_t from_offset : {0u, 1u, 8u, 13u}) {
        std::fill(to.begin(), to.end(), 0xee);
        frames::streaming_copy(to.data() + to_offset, from.data() + from_offset, size);
        ASSERT_EQ(std::memcmp(to.data() + to_offset, from.data() + from_offset, size), 0)
            << size << " bytes to offset " << to_offset << " from " << from_offset;
        for (std::size_t i = 0; i < to_offset; ++i) ASSERT_EQ(to[i], 0xee) << "written before";
        for (std::size_t i = to_offset + size; i < to.size(); ++i)
          ASSERT_EQ(to[i], 0xee) << "written past the end";
      }
    }
  }
}

}  // namespace
