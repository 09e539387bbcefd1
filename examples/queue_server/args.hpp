// Option parsing shared by the three programs: --address A --authkey K, plus positionals; the
// server also takes --session-ttl D and --heartbeat D (10s, 500ms: zmanager::parse_duration).
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
      else if (a == "--session-ttl" && i + 1 < argc)
        options.session_ttl = zmanager::parse_duration(argv[++i]);
      else if (a == "--heartbeat" && i + 1 < argc)
        options.heartbeat_interval = zmanager::parse_duration(argv[++i]);
      else
        rest.push_back(a);
    }
  }
};
