// A first, quick measurement of call rates (the side-by-side benchmark against Python's managers
// and raw ZeroMQ is issue 4's scripts/bench). Prints synchronous calls/s with latency
// percentiles, and pipelined calls/s with everything in flight.
//   build/bench/zmanager_quick_calls [CALLS]
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <vector>

#include <zmanager/zmanager.hpp>

struct Maths {
  int add(int x, int y) { return x + y; }
};
ZMANAGER_EXPOSE(Maths, add)

int main(int argc, char** argv) {
  using Clock = std::chrono::steady_clock;
  int n = argc > 1 ? std::atoi(argv[1]) : 20000;
  zmanager::BaseManager manager;
  manager.register_type<Maths>("Maths");
  manager.start();
  auto maths = manager.create<Maths>("Maths");

  std::vector<double> micros;
  micros.reserve(static_cast<std::size_t>(n));
  auto start = Clock::now();
  for (int i = 0; i < n; ++i) {
    auto t = Clock::now();
    maths.add(i, 1);
    micros.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t).count());
  }
  double sync_s = std::chrono::duration<double>(Clock::now() - start).count();
  std::sort(micros.begin(), micros.end());
  auto pct = [&](double p) { return micros[static_cast<std::size_t>(p * (micros.size() - 1))]; };
  std::cout << "sync_add      " << static_cast<long>(n / sync_s) << " calls/s  p50 " << pct(0.5)
            << " us  p99 " << pct(0.99) << " us\n";

  auto async = maths.async();
  std::vector<zmanager::Future<int>> futures;
  futures.reserve(static_cast<std::size_t>(n));
  start = Clock::now();
  for (int i = 0; i < n; ++i) futures.push_back(async.add(i, 1));
  for (auto& f : futures) f.get();
  double pipe_s = std::chrono::duration<double>(Clock::now() - start).count();
  std::cout << "pipelined_add " << static_cast<long>(n / pipe_s) << " calls/s (all in flight)\n";
}
