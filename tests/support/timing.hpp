// Measuring how long something took, for tests that check a wait was (about) as long as asked;
// waiting for what happens in another process.
#pragma once

#include <chrono>
#include <thread>

namespace test {

/// Measures how long `f` took.
template <class F>
std::chrono::milliseconds timed(F&& f) {
  auto start = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                               start);
}

/// Polls `done` until it holds or `deadline` passes; whether it held. For an event in another
/// process (a server releasing what a dead client held) that only its statistics show.
template <class Pred>
bool eventually(Pred done, std::chrono::milliseconds deadline) {
  auto end = std::chrono::steady_clock::now() + deadline;
  while (std::chrono::steady_clock::now() < end) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return done();
}

}  // namespace test
