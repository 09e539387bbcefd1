// The memory floor of the benchmark (bench/README.md): how fast one thread copies 4K frames
// (3840 × 2160 × 3 bytes) from one buffer to another, both touched beforehand. Moving frames
// between processes through shared memory is measured against it.
//   bench_memcpy_floor --scenario frames_4k [--seconds S] [--copy memcpy|streaming]
//                      [other shared options, ignored]
// --copy streaming copies as the frame producer of examples/shared_memory does (streaming
// stores), to tell what the copy gains from what the hand-off between processes costs.
// prints one JSON line, in the format every benchmark program shares; any other scenario of the
// spec prints `unsupported`.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "streaming_copy.hpp"

namespace {

constexpr const char* kImpl = "memcpy";
constexpr std::size_t kFrameBytes = std::size_t{3840} * 2160 * 3;
constexpr double kWarmupSeconds = 0.2;

using Clock = std::chrono::steady_clock;

/// Copies frames for `seconds`; returns frames copied and the seconds it took.
std::pair<long long, double> copy_for(double seconds, std::vector<char>& from,
                                      std::vector<char>& to, bool streaming) {
  auto start = Clock::now();
  auto end =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  long long n = 0;
  do {
    from[static_cast<std::size_t>(n) % from.size()] = static_cast<char>(n);  // not a repeat
    if (streaming)
      frames::streaming_copy(to.data(), from.data(), from.size());
    else
      std::memcpy(to.data(), from.data(), from.size());
    ++n;
  } while (Clock::now() < end);
  // The copy must be observable, or the compiler may drop it.
  if (to[0] == 1 && to[1] == 2) std::fputs("", stderr);
  return {n, std::chrono::duration<double>(Clock::now() - start).count()};
}

}  // namespace

int main(int argc, char** argv) {
  std::string scenario;
  double seconds = 1.0;
  std::string copy = "memcpy";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string_view opt = argv[i];
    if (opt == "--scenario") scenario = argv[i + 1];
    if (opt == "--seconds") seconds = std::stod(argv[i + 1]);
    if (opt == "--copy") copy = argv[i + 1];
  }
  if (copy != "memcpy" && copy != "streaming") {
    std::fprintf(stderr, "bench_memcpy_floor: --copy must be memcpy or streaming\n");
    return 2;
  }
  const bool streaming = copy == "streaming";
  if (scenario != "frames_4k") {
    std::printf("{\"impl\": \"%s\", \"scenario\": \"%s\", \"unsupported\": true}\n", kImpl,
                scenario.c_str());
    return scenario.empty() ? 2 : 0;
  }
  if (!(seconds > 0 && seconds <= 30)) {
    std::fprintf(stderr, "bench_memcpy_floor: --seconds must be in (0, 30]\n");
    return 2;
  }
  std::vector<char> from(kFrameBytes, 'x'), to(kFrameBytes, 'y');
  copy_for(kWarmupSeconds, from, to, streaming);
  auto [n, took] = copy_for(seconds, from, to, streaming);
  double frames_per_s = static_cast<double>(n) / took;
  std::printf(
      "{\"impl\": \"%s\", \"scenario\": \"frames_4k\", \"value\": %.1f, \"unit\": \"MiB/s\", "
      "\"frames_per_s\": %.1f, \"n\": %lld, \"frame_bytes\": %zu, \"copy\": \"%s\"}\n",
      kImpl, frames_per_s * static_cast<double>(kFrameBytes) / (1 << 20), frames_per_s, n,
      kFrameBytes, copy.c_str());
  return 0;
}
