// Debian's python3 as the other side of a test: runs a script and collects what it prints.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "process.hpp"

namespace test {

/// Runs python3 with `script`; returns its stdout lines. The test fails if it does not exit 0
/// within a minute.
inline std::vector<std::string> run_python(const std::string& script) {
  auto child = Child::spawn({"/usr/bin/python3", "-c", script});
  std::vector<std::string> lines;
  while (auto line = child.read_line(std::chrono::seconds(60))) lines.push_back(*line);
  EXPECT_EQ(child.wait(std::chrono::seconds(60)), 0) << script;
  return lines;
}

/// Python < 3.13 registers a segment it attaches to with its resource tracker, which unlinks it
/// when the Python process exits; scripts call keep(shm) on what C++ is to keep using.
inline constexpr const char* kPythonSharedMemoryPrelude =
    "import sys\n"
    "from multiprocessing import shared_memory, resource_tracker\n"
    "def keep(shm): resource_tracker.unregister(shm._name, 'shared_memory')\n";

}  // namespace test
