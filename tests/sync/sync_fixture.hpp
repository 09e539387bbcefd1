// One SyncManager server per test process (started before any thread exists), the shared dict
// "objects" through which client processes reach what a test shares, and helpers to wait on a
// condition with a deadline.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <zmanager/zmanager.hpp>

#include "process.hpp"
#include "timing.hpp"

using namespace std::chrono_literals;

namespace test {

/// Counts barrier trips on the server (a Barrier's action runs there).
struct TripCounter {
  static std::atomic<int>& trips() {
    static std::atomic<int> n{0};
    return n;
  }
  int count() { return trips().load(); }
};

}  // namespace test

ZMANAGER_EXPOSE(test::TripCounter, count)

namespace test {

class SyncTest : public ::testing::Test {
 protected:
  // Two worker threads: the tests park hundreds of calls at once, which must cost no thread.
  static void SetUpTestSuite() { start_server({.threads = 2}); }
  static void start_server(zmanager::ManagerOptions options) {
    manager_ = new zmanager::SyncManager(std::move(options));
    manager_->register_shared_dict("objects");
    manager_->register_type<TripCounter>("TripCounter");
    manager_->register_action("count_trip", [] { ++TripCounter::trips(); });
    manager_->register_action("fail", [] { throw zmanager::ValueError("the action failed"); });
    manager_->start();
  }
  static void TearDownTestSuite() {
    delete manager_;
    manager_ = nullptr;
  }

  static zmanager::SyncManager& m() { return *manager_; }
  static zmanager::DictProxy<std::string, zmanager::Value> objects() {
    return manager_->shared_dict<std::string, zmanager::Value>("objects");
  }
  /// A client process running `command args...` against this server.
  static Child client(std::vector<std::string> command) {
    std::vector<std::string> argv{ZMANAGER_SYNC_CLIENT, manager_->address(), manager_->authkey()};
    argv.insert(argv.end(), command.begin(), command.end());
    return Child::spawn(argv);
  }

 private:
  static inline zmanager::SyncManager* manager_ = nullptr;
};

/// Polls `condition` until it holds or `timeout` passes (state that lives in another process
/// has nothing local to wait on). Returns whether it held.
inline bool eventually(const std::function<bool()>& condition,
                       std::chrono::milliseconds timeout = 30s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(2ms);
  }
  return true;
}

}  // namespace test
