// Takes the frames frames_producer puts in shared memory, reading each where it lies and
// checking it is whole and in order; prints the frame rate.
// Usage: frames_consumer --address A   (the authkey: ZMANAGER_AUTHKEY)
#include <iostream>
#include <stdexcept>
#include <string_view>

#include "frame_ring.hpp"

int main(int argc, char** argv) {
  try {
    if (argc != 3 || std::string_view(argv[1]) != "--address")
      throw std::invalid_argument("usage: frames_consumer --address A");
    zmanager::SyncManager manager({.address = argv[2]});
    manager.connect();
    auto board = manager.shared_dict("frames");
    auto frame_bytes = static_cast<std::size_t>(board["frame_bytes"].as<std::int64_t>());
    auto expected = board["frames"].as<std::int64_t>();
    auto free = board["free"].as<frames::SlotQueue>();
    auto filled = board["filled"].as<frames::SlotQueue>();
    auto picture_sum = static_cast<std::uint64_t>(board["picture_sum"].as<std::int64_t>());
    frames::FrameRing ring(board["segment"].as<std::string>(), frame_bytes);
    frames::FrameConsumer consumer(ring, free, filled);

    auto start = std::chrono::steady_clock::now();
    std::int64_t got = 0;
    while (auto number = consumer.receive(picture_sum)) {
      if (*number != got)
        throw std::runtime_error("frame " + std::to_string(*number) + " came in place of " +
                                 std::to_string(got));
      ++got;
    }
    std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    if (got != expected)
      throw std::runtime_error("got " + std::to_string(got) + " of " + std::to_string(expected));
    double rate = static_cast<double>(got) / took.count();
    std::cout << "consumed " << got << " frames: " << static_cast<std::int64_t>(rate)
              << " frames/s, " << static_cast<std::int64_t>(rate * frame_bytes / (1 << 20))
              << " MiB/s" << std::endl;
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "frames_consumer: " << e.what() << '\n';
    return 1;
  }
}
