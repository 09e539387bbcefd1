// A process's resident memory, read from /proc, for the benchmark's memory rows: the one
// definition the zmanager and Redis programs share.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

/// VmRSS of `pid` in KiB; std::runtime_error when the process or its line cannot be read.
inline std::int64_t rss_kib(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (!line.starts_with("VmRSS:")) continue;
    std::istringstream in(line.substr(6));
    std::int64_t kib = -1;
    in >> kib;  // "VmRSS:     12345 kB"
    if (kib < 0) throw std::runtime_error("unreadable VmRSS line: " + line);
    return kib;
  }
  throw std::runtime_error("no VmRSS for process " + std::to_string(pid));
}
