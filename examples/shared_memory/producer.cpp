// Moves 4K frames from this process to a frames_consumer process through shared memory: the
// frames are copied into a ring of slots in one segment, and only slot numbers travel through
// the manager's queues. Prints what the consumer measured.
// Usage: frames_producer [--frames N] [--slots S] [--frame-bytes B] [--consumer PATH]
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <iostream>
#include <stdexcept>
#include <string_view>
#include <vector>

#include "frame_ring.hpp"

extern char** environ;

namespace {

struct Args {
  std::int64_t frames = 200;
  std::int64_t slots = 2;
  std::int64_t frame_bytes = static_cast<std::int64_t>(frames::kFrameBytes);
  std::string consumer;
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string_view opt = argv[i];
    std::string value = argv[i + 1];
    if (opt == "--frames")
      a.frames = std::stoll(value);
    else if (opt == "--slots")
      a.slots = std::stoll(value);
    else if (opt == "--frame-bytes")
      a.frame_bytes = std::stoll(value);
    else if (opt == "--consumer")
      a.consumer = value;
    else
      throw std::invalid_argument("unknown option " + std::string(opt));
  }
  if (argc % 2 == 0) throw std::invalid_argument(std::string(argv[argc - 1]) + " needs a value");
  if (a.frames < 1 || a.slots < 2 || a.frame_bytes < 16)
    throw std::invalid_argument("--frames >= 1, --slots >= 2, --frame-bytes >= 16");
  return a;
}

/// The consumer process: started with the authkey in its environment (never on the command
/// line, which any user can read), killed if this process fails first.
class ConsumerProcess {
 public:
  ConsumerProcess(const std::string& path, const std::string& address, const std::string& key) {
    std::vector<std::string> env;
    for (char** e = environ; *e; ++e)
      if (!std::string_view(*e).starts_with("ZMANAGER_AUTHKEY=")) env.emplace_back(*e);
    env.push_back("ZMANAGER_AUTHKEY=" + key);
    std::vector<std::string> args = {path, "--address", address};
    std::vector<char*> argv, envp;
    for (auto& s : args) argv.push_back(s.data());
    for (auto& s : env) envp.push_back(s.data());
    argv.push_back(nullptr);
    envp.push_back(nullptr);
    // posix_spawn, not fork: this process has threads (the manager connection's).
    if (int rc = ::posix_spawn(&pid_, argv[0], nullptr, nullptr, argv.data(), envp.data()))
      throw std::runtime_error("cannot start " + path + ": " + std::strerror(rc));
  }
  ~ConsumerProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  ConsumerProcess(const ConsumerProcess&) = delete;
  ConsumerProcess& operator=(const ConsumerProcess&) = delete;

  /// Its exit status; throws if it has not exited within `timeout`.
  int wait(std::chrono::milliseconds timeout) {
    int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
    if (fd < 0) throw std::runtime_error("pidfd_open failed");
    pollfd p{fd, POLLIN, 0};
    int ready = ::poll(&p, 1, static_cast<int>(timeout.count()));
    ::close(fd);
    if (ready <= 0) throw std::runtime_error("the consumer did not exit in time");
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

 private:
  pid_t pid_ = -1;
};

/// The segment is removed however this process leaves (the consumer's mapping stays valid).
struct UnlinkAtExit {
  frames::FrameRing& ring;
  ~UnlinkAtExit() {
    try {
      ring.unlink();
    } catch (const zmanager::Error& e) {
      std::cerr << "frames_producer: " << e.what() << '\n';
    }
  }
};

int run(Args a) {
  if (a.consumer.empty())  // installed or built, the two programs sit side by side
    a.consumer = std::filesystem::read_symlink("/proc/self/exe").parent_path() / "frames_consumer";
  zmanager::SyncManager manager;
  manager.register_shared_dict("frames");
  manager.start();  // forks the server: first, while this process has no other threads

  auto frame_bytes = static_cast<std::size_t>(a.frame_bytes);
  frames::FrameRing ring(frame_bytes, static_cast<std::size_t>(a.slots));
  UnlinkAtExit unlink_at_exit{ring};
  // A picture to send: any bytes will do, as long as the consumer's reading can be checked.
  std::vector<std::byte> frame(frame_bytes);
  for (std::size_t i = 0; i < frame.size(); i += 4096) frame[i] = std::byte(i >> 12);
  auto free = manager.Queue<std::int64_t>();
  auto filled = manager.Queue<std::int64_t>();
  for (std::int64_t s = 0; s < a.slots; ++s) free.put(s);
  auto board = manager.shared_dict("frames");
  board["segment"] = ring.name();
  board["frame_bytes"] = a.frame_bytes;
  board["frames"] = a.frames;
  board["free"] = free;
  board["filled"] = filled;

  board["picture_sum"] = static_cast<std::int64_t>(frames::picture_sum(frame));

  ConsumerProcess consumer(a.consumer, manager.address(), manager.authkey());
  frames::FrameProducer producer(ring, free, filled);
  for (std::int64_t n = 0; n < a.frames; ++n) producer.send(frame, n);
  producer.finish();
  std::cout << "produced " << a.frames << " frames of " << frame_bytes << " bytes through '"
            << ring.name() << "' (" << a.slots << " slots)" << std::endl;
  int status = consumer.wait(std::chrono::seconds(60));
  if (status != 0) throw std::runtime_error("the consumer exited with " + std::to_string(status));
  std::cout << "ok" << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse(argc, argv));
  } catch (const std::exception& e) {
    std::cerr << "frames_producer: " << e.what() << '\n';
    return 1;
  }
}
