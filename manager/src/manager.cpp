#include "zmanager/manager.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <thread>

#include "zmanager/wire/log.hpp"
#include "zmanager/wire/protocol.hpp"

namespace zmanager {
namespace {

std::string initial_authkey(const ManagerOptions& options) {
  if (options.authkey) return *options.authkey;
  if (const char* env = std::getenv("ZMANAGER_AUTHKEY")) return env;
  // Hex, so that the key can be handed to other programs as an argument or variable.
  auto nonce = wire::random_nonce();
  return wire::to_hex(std::string_view(reinterpret_cast<const char*>(nonce.data()), nonce.size()));
}

ServerOptions server_options(const ManagerOptions& m, const std::string& authkey) {
  ServerOptions s;
  s.address = m.address;
  s.local_address = m.local_address;
  s.authkey = authkey;
  s.heartbeat_interval = m.heartbeat_interval;
  s.session_ttl = m.session_ttl;
  s.threads = m.threads;
  s.segment_pool_bytes = m.segment_pool_bytes;
  return s;
}

// A wildcard bind address is not something to connect to.
std::string connectable(std::string address) {
  for (const char* any : {"tcp://0.0.0.0:", "tcp://*:"}) {
    if (address.starts_with(any)) address = "tcp://127.0.0.1:" + address.substr(std::strlen(any));
  }
  return address;
}

void write_all(int fd, const std::string& text) {
  std::size_t done = 0;
  while (done < text.size()) {
    auto n = ::write(fd, text.data() + done, text.size() - done);
    if (n <= 0) return;
    done += static_cast<std::size_t>(n);
  }
}

// Reads the child's one-line report: "ok <address>" or "error <message>".
std::string read_report(int fd, std::chrono::milliseconds timeout) {
  std::string text;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (text.find('\n') == std::string::npos) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) throw ProcessError("the server process did not start in time");
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char buf[512];
    auto n = ::read(fd, buf, sizeof buf);
    if (n <= 0) throw ProcessError("the server process exited before it was ready");
    text.append(buf, static_cast<std::size_t>(n));
  }
  return text.substr(0, text.find('\n'));
}

}  // namespace

std::chrono::milliseconds parse_duration(std::string_view text) {
  auto bad = [&] {
    return ValueError("not a duration: '" + std::string(text) +
                      "' (a number and a unit: ms, s, m or h, e.g. 10s)");
  };
  std::size_t unit_at = text.find_first_not_of("0123456789.");
  std::string_view number = text.substr(0, unit_at);
  std::string_view unit = unit_at == std::string_view::npos ? "s" : text.substr(unit_at);
  if (number.empty() || number.find('.') != number.rfind('.')) throw bad();
  double value = std::strtod(std::string(number).c_str(), nullptr);
  double per_unit;
  if (unit == "ms")
    per_unit = 1;
  else if (unit == "s")
    per_unit = 1e3;
  else if (unit == "m")
    per_unit = 60e3;
  else if (unit == "h")
    per_unit = 3600e3;
  else
    throw bad();
  double ms = value * per_unit;
  if (ms > 1e12) throw bad();  // beyond any lease or timeout, and far from overflow
  return std::chrono::milliseconds(static_cast<std::int64_t>(ms + 0.5));
}

BaseManager::BaseManager(ManagerOptions options)
    : options_(std::move(options)), authkey_(initial_authkey(options_)) {}

BaseManager::~BaseManager() {
  try {
    shutdown();
  } catch (const std::exception& e) {
    log::warn("shutting the manager down: ", e.what());
  }
}

void BaseManager::ensure_initial(const char* what) const {
  if (state_ == State::kShutdown) throw ProcessError(std::string(what) + ": manager has shut down");
  if (state_ != State::kInitial)
    throw ProcessError(std::string(what) + ": manager is already started or connected");
}

void BaseManager::start() {
  ensure_initial("start()");
  int report[2], lifeline[2];
  if (::pipe2(report, O_CLOEXEC) != 0 || ::pipe2(lifeline, O_CLOEXEC) != 0)
    throw ProcessError("pipe failed");
  pid_t pid = ::fork();
  if (pid < 0) throw ProcessError(std::string("fork failed: ") + std::strerror(errno));
  if (pid == 0) {
    // The child: this process's threads and ZeroMQ contexts did not come along, so it builds
    // its own and leaves with _exit, never running the parent's destructors.
    ::close(report[0]);
    ::close(lifeline[1]);
    int status = 0;
    try {
      Server server(registry_, server_options(options_, authkey_));
      write_all(report[1], "ok " + server.address() + "\n");
      ::close(report[1]);
      // Serve until told to stop, or until the parent is gone: its end of the lifeline closes
      // and the watcher stops the server the way SIGTERM would (by then nothing else may).
      std::thread([fd = lifeline[0]] {
        char c;
        while (::read(fd, &c, 1) > 0) {
        }
        ::kill(::getpid(), SIGTERM);
      }).detach();
      // serve_forever() takes SIGTERM over while it serves and restores this on return: the
      // watcher's kill may land after that, while the server stops (its stop hooks running),
      // and must not end the process there.
      ::signal(SIGTERM, SIG_IGN);
      server.serve_forever();
    } catch (const std::exception& e) {
      write_all(report[1], std::string("error ") + e.what() + "\n");
      status = 1;
    }
    ::_exit(status);
  }
  ::close(report[1]);
  ::close(lifeline[0]);
  child_ = pid;
  lifeline_ = lifeline[1];
  std::string line;
  try {
    line = read_report(report[0], options_.connect_timeout);
  } catch (...) {
    ::close(report[0]);
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    child_ = -1;
    throw;
  }
  ::close(report[0]);
  if (!line.starts_with("ok ")) {
    ::waitpid(pid, nullptr, 0);
    child_ = -1;
    throw ProcessError("the server process failed: " + line.substr(line.find(' ') + 1));
  }
  address_ = connectable(line.substr(3));
  state_ = State::kStarted;
  // This process is on the server's host: the same-host transport, when there is one.
  channel_ =
      zmanager::connect({options_.local_address.empty() ? address_ : options_.local_address,
                         authkey_, options_.connect_timeout, "manager", options_.call_timeout,
                         options_.reconnect, options_.spin_before_sleep});
}

void BaseManager::connect() {
  ensure_initial("connect()");
  address_ = options_.address;
  channel_ =
      zmanager::connect({address_, authkey_, options_.connect_timeout, "manager",
                         options_.call_timeout, options_.reconnect, options_.spin_before_sleep});
  state_ = State::kConnected;
}

Server& BaseManager::get_server() {
  ensure_initial("get_server()");
  if (!server_) {
    server_ = std::make_unique<Server>(registry_, server_options(options_, authkey_));
    address_ = connectable(server_->address());
  }
  return *server_;
}

std::string BaseManager::address() const {
  return address_.empty() ? options_.address : address_;
}

DynamicProxy BaseManager::server() {
  if (state_ == State::kShutdown) throw ProcessError("manager has shut down");
  if (!channel_) throw ProcessError("manager is not started or connected");
  return server_proxy(channel_);
}

void BaseManager::shutdown() {
  if (state_ == State::kShutdown) return;
  if (state_ == State::kInitial) {  // nothing started; drop a server made by get_server()
    server_.reset();
    return;
  }
  if (state_ == State::kStarted && channel_) {
    try {
      auto f = server_proxy(channel_).call_async<void>("shutdown");
      f.wait_for(std::chrono::seconds(5));
    } catch (const std::exception& e) {
      log::debug("shutdown request: ", e.what());
    }
  }
  if (channel_) channel_->close();
  channel_.reset();
  if (child_ > 0) {
    ::close(lifeline_);  // a child that missed the request stops on EOF
    lifeline_ = -1;
    // Wait for the child to exit; escalate if it does not within the grace period.
    int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, child_, 0));
    if (pidfd >= 0) {
      pollfd p{pidfd, POLLIN, 0};
      if (::poll(&p, 1, 5000) <= 0) ::kill(child_, SIGKILL);
      ::close(pidfd);
    } else {
      ::kill(child_, SIGTERM);
    }
    ::waitpid(child_, nullptr, 0);
    child_ = -1;
  }
  state_ = State::kShutdown;
}

}  // namespace zmanager
