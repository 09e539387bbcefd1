// Measuring how long something took, for tests that check a wait was (about) as long as asked.
#pragma once

#include <chrono>

namespace test {

/// Measures how long `f` took.
template <class F>
std::chrono::milliseconds timed(F&& f) {
  auto start = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                               start);
}

}  // namespace test
