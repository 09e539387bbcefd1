// A separate client program for tests that need client processes: spawned (fork + exec) by the
// tests, so that it starts clean instead of inheriting a copy of a threaded test process.
//   zmanager_test_client ADDRESS AUTHKEY increment-shared-counter N
//   zmanager_test_client ADDRESS AUTHKEY consume-shared-queue N     (expects "job0".."jobN-1")
//   zmanager_test_client ADDRESS AUTHKEY hold-counters N    (creates N, prints "ready", waits)
//   zmanager_test_client ADDRESS AUTHKEY create-counters N  (creates N, exits cleanly)
//   zmanager_test_client ADDRESS AUTHKEY join-roster 0      (joins, prints "ready", waits)
//   zmanager_test_client ADDRESS AUTHKEY hold-segments N    (sends N blobs of 256 KiB, so that a
//                                     unix:// connection is lent segments; "ready", waits)
#include <unistd.h>

#include <iostream>

#include "test_types.hpp"

int main(int argc, char** argv) try {
  if (argc != 5) {
    std::cerr << "usage: zmanager_test_client ADDRESS AUTHKEY COMMAND N\n";
    return 2;
  }
  zmanager::BaseManager client({.address = argv[1], .authkey = argv[2]});
  client.connect();
  std::string command = argv[3];
  int n = std::stoi(argv[4]);
  if (command == "increment-shared-counter") {
    auto counter = client.get_shared<Counter>("shared_counter");
    for (int i = 0; i < n; ++i) counter.increment(1);
    return 0;
  }
  if (command == "consume-shared-queue") {
    auto q = client.get_shared<JobQueue>("shared_queue");
    for (int i = 0; i < n; ++i) {
      std::string job = q.get();
      if (job != "job" + std::to_string(i)) {
        std::cerr << "got " << job << ", expected job" << i << "\n";
        return 1;
      }
    }
    return 0;
  }
  if (command == "join-roster") {
    client.get_shared<Roster>("roster").join();
    std::cout << "ready" << std::endl;
    ::pause();  // until killed
    return 0;
  }
  if (command == "hold-segments") {
    auto maths = client.create<Maths>("Maths");
    const zmanager::Bytes blob(std::size_t{256} << 10);
    for (int i = 0; i < n; ++i)
      if (maths.length(blob) != blob.size()) return 1;
    std::cout << "ready" << std::endl;
    ::pause();  // until killed
    return 0;
  }
  if (command == "hold-counters" || command == "create-counters") {
    std::vector<zmanager::Proxy<Counter>> held;
    for (int i = 0; i < n; ++i) held.push_back(client.create<Counter>("Counter", i));
    if (command == "create-counters") return 0;
    std::cout << "ready" << std::endl;
    ::pause();  // until killed
    return 0;
  }
  std::cerr << "unknown command " << command << "\n";
  return 2;
} catch (const std::exception& e) {
  std::cerr << "zmanager_test_client: " << e.what() << "\n";
  return 1;
}
