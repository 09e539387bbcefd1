// One worker: squares tasks until its sentinel (phase 1), waits for every worker at the barrier,
// then sums its share of all the results (phase 2). Started by workers_coordinator.
// Usage: workers_worker --address tcp://127.0.0.1:PORT --id I   (authkey in $ZMANAGER_AUTHKEY)
#include <charconv>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>

#include "board.hpp"

using namespace workers;

namespace {

struct Objects {
  TaskQueue tasks;
  IntDict results, done, partials;
  zmanager::LockProxy lock;
  Counter counter;
  zmanager::BarrierProxy barrier;
  std::int64_t n_tasks = 0;
};

void phase1(const Objects& o, std::int64_t id) {
  std::int64_t done = 0;
  for (;;) {
    Task task;
    try {
      task = o.tasks.get(true, kWait);
    } catch (const zmanager::Empty&) {
      throw std::runtime_error("no task came in time");
    }
    if (!task) {
      o.done.set(id, done);
      o.tasks.task_done();
      return;
    }
    o.results.set(*task, *task * *task);
    {
      // The lock makes get-then-set one step for the other workers; without it two workers
      // read the same value and an increment is lost. counter.fetch_add(1) does the same in one
      // call on the server. std::lock_guard guard(o.lock) works too, but waits forever.
      std::unique_lock guard(o.lock, kWait);
      if (!guard) throw std::runtime_error("the counter lock was not free within the wait limit");
      o.counter.set(o.counter.get() + 1);
    }
    ++done;
    // After the result and the count are stored, so that the coordinator's join() sees both.
    o.tasks.task_done();
  }
}

void phase2(const Objects& o, std::int64_t id) {
  // Phase 2 needs all of phase 1: every task counted and squared, by whichever worker took it.
  // Only the barrier guarantees that: a worker takes its sentinel while its peers may still be
  // on their last task (without the barrier these checks fail on almost every run).
  std::int64_t counted = o.counter.get();
  if (counted != o.n_tasks)
    throw std::runtime_error("phase 2 began with " + std::to_string(counted) + " of " +
                             std::to_string(o.n_tasks) + " tasks counted");
  auto snapshot = o.results.copy();
  std::int64_t workers = o.barrier.parties(), sum = 0;
  for (std::int64_t k = 0; k < o.n_tasks; ++k) {
    if (!in_share(k, id, workers)) continue;
    auto it = snapshot.find(k);
    if (it == snapshot.end())
      throw std::runtime_error("phase 2 began without the result of task " + std::to_string(k));
    sum += it->second;
  }
  o.partials.set(id, sum);
}

}  // namespace

int main(int argc, char** argv) {
  std::string address;
  std::int64_t id = -1;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string_view opt = argv[i], value = argv[i + 1];
    if (opt == "--address") {
      address = value;
    } else if (opt == "--id") {
      auto [end, err] = std::from_chars(value.data(), value.data() + value.size(), id);
      if (err != std::errc() || end != value.data() + value.size()) id = -1;
    }
  }
  std::string me = "workers_worker " + std::to_string(id);
  if (address.empty() || id < 0) {
    std::cerr << "usage: workers_worker --address ADDRESS --id N\n";
    return 2;
  }
  // Without it the manager would invent a key the server does not know.
  if (!std::getenv("ZMANAGER_AUTHKEY")) {
    std::cerr << me << ": ZMANAGER_AUTHKEY is not set\n";
    return 2;
  }

  // Outside the try: the catch still needs the connection to break the barrier.
  zmanager::SyncManager manager({.address = address});
  Objects o;
  try {
    manager.connect();
    auto board = manager.shared_dict(kBoard);
    o.tasks = board["tasks"].as<TaskQueue>();
    o.results = board["results"].as<IntDict>();
    o.done = board["done"].as<IntDict>();
    o.partials = board["partials"].as<IntDict>();
    o.lock = board["lock"].as<zmanager::LockProxy>();
    o.counter = board["counter"].as<Counter>();
    o.barrier = board["barrier"].as<zmanager::BarrierProxy>();
    o.n_tasks = board["n_tasks"].as<std::int64_t>();

    phase1(o, id);
    try {
      o.barrier.wait(kWait);
    } catch (const zmanager::BrokenBarrierError&) {
      throw std::runtime_error("the barrier broke: a peer failed or did not arrive in time");
    }
    phase2(o, id);
    return 0;
  } catch (const std::exception& e) {
    std::cerr << me << ": " << e.what() << '\n';
    // Breaking the barrier releases the peers now rather than after their own timeout.
    try {
      if (o.barrier) o.barrier.abort();
    } catch (const std::exception&) {
    }
    return 1;
  }
}
