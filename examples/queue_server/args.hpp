// Option parsing shared by the three programs: --address A --authkey K, plus positionals.
#pragma once

#include <string>
#include <vector>

#include <zmanager/zmanager.hpp>

struct QueueArgs {
  zmanager::ManagerOptions options{.address = "tcp://127.0.0.1:50000"};
  std::vector<std::string> rest;
  QueueArgs(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      if (a == "--address" && i + 1 < argc)
        options.address = argv[++i];
      else if (a == "--authkey" && i + 1 < argc)
        options.authkey = argv[++i];
      else
        rest.push_back(a);
    }
  }
};
