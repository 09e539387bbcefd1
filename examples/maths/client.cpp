// Python: m = MyManager(address=(host, 50000), authkey=b'abc'); m.connect(); maths = m.Maths()
// Usage: maths_client [--address tcp://host:50000] [--authkey KEY] [--shutdown]
#include <cstring>
#include <iostream>
#include <vector>

#include "maths.hpp"

int main(int argc, char** argv) try {
  zmanager::ManagerOptions options{.address = "tcp://127.0.0.1:50000"};
  bool shutdown = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--shutdown")) shutdown = true;
    if (i + 1 < argc && !std::strcmp(argv[i], "--address"))
      options.address = argv[++i];
    else if (i + 1 < argc && !std::strcmp(argv[i], "--authkey"))
      options.authkey = argv[++i];
  }
  zmanager::BaseManager manager(options);
  manager.register_type<MathsClass>("Maths");
  manager.connect();
  if (shutdown) {
    manager.shutdown_server();
    return 0;
  }
  zmanager::Proxy<MathsClass> maths = manager.create<MathsClass>("Maths");
  std::cout << maths.add(4, 3) << '\n';  // 7
  std::cout << maths.mul(7, 8) << '\n';  // 56
  // A burst of calls in flight, sent a few dozen to a message (a Redis pipeline, in effect).
  std::vector<zmanager::Future<int>> sums;
  {
    zmanager::Batch batch(maths);
    for (int i = 0; i < 100; ++i) sums.push_back(maths.async().add(i, 1));
  }
  int total = 0;
  for (auto& sum : sums) total += sum.get();
  std::cout << total << '\n';  // 5050
} catch (const zmanager::Error& e) {
  std::cerr << "maths_client: " << e.what() << '\n';
  return 1;
}
