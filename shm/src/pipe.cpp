#include "zmanager/pipe.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "zmanager/wire/protocol.hpp"

namespace zmanager {

// A message on a pipe (both ends on one host, so native byte order):
//   uint64 body length, uint32 blob count, uint32 zero, the msgpack body,
//   then per blob: uint64 length, its bytes.
// The reader checks the bounds of a server's messages (wire::Limits: body, whole message,
// number of bytes values, depth) before it allocates anything.
namespace {

const wire::Limits kLimits{};

struct Header {
  std::uint64_t body_bytes;
  std::uint32_t blobs;
  std::uint32_t zero;
};

void write_all(int fd, const void* data, std::size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    // MSG_NOSIGNAL: a closed reader is a BrokenPipeError here, not a SIGPIPE that ends the
    // process.
    ssize_t n = ::send(fd, p, size, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_os_error(errno, "pipe");
    }
    p += n;
    size -= static_cast<std::size_t>(n);
  }
}

/// Reads exactly `size` bytes; false at end of stream before the first byte.
bool read_all(int fd, void* data, std::size_t size, bool started) {
  char* p = static_cast<char*>(data);
  std::size_t got = 0;
  while (got < size) {
    ssize_t n = ::read(fd, p + got, size - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == ECONNRESET) break;
      throw_os_error(errno, "pipe");
    }
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  if (got == size) return true;
  if (got == 0 && !started) return false;
  throw EOFError("the other end of the pipe closed in the middle of a message");
}

}  // namespace

PipeEnd::PipeEnd(PipeEnd&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), readable_(other.readable_), writable_(other.writable_) {}

PipeEnd& PipeEnd::operator=(PipeEnd&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = std::exchange(other.fd_, -1);
    readable_ = other.readable_;
    writable_ = other.writable_;
  }
  return *this;
}

void PipeEnd::close() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void PipeEnd::inheritable(bool on) {
  if (fd_ < 0) throw OSError("the pipe end is closed");
  int flags = ::fcntl(fd_, F_GETFD);
  if (flags < 0 || ::fcntl(fd_, F_SETFD, on ? flags & ~FD_CLOEXEC : flags | FD_CLOEXEC) != 0)
    throw_os_error(errno, "pipe");
}

bool PipeEnd::poll(std::chrono::milliseconds timeout) const {
  if (fd_ < 0) throw OSError("the pipe end is closed");
  if (!readable_) throw OSError("connection is write-only");
  pollfd p{fd_, POLLIN, 0};
  for (;;) {
    int ready = ::poll(&p, 1, static_cast<int>(std::max<std::int64_t>(0, timeout.count())));
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) throw_os_error(errno, "pipe");
    return ready > 0;  // data, or the peer's close (POLLHUP): either way recv() will not block
  }
}

void PipeEnd::send_encoded(const msgpack::sbuffer& body, const std::vector<Bytes>& blobs) {
  if (fd_ < 0) throw OSError("the pipe end is closed");
  if (!writable_) throw OSError("connection is read-only");
  std::uint64_t total = body.size();
  for (const auto& b : blobs) total += b.size();
  if (body.size() > kLimits.max_body_bytes || blobs.size() > kLimits.max_frames ||
      total > kLimits.max_message_bytes)
    throw ValueError("a pipe message holds at most 256 MiB (64 MiB outside bytes values)");
  Header h{body.size(), static_cast<std::uint32_t>(blobs.size()), 0};
  write_all(fd_, &h, sizeof h);
  write_all(fd_, body.data(), body.size());
  for (const auto& b : blobs) {
    std::uint64_t size = b.size();
    write_all(fd_, &size, sizeof size);
    write_all(fd_, b.data(), b.size());
  }
}

PipeEnd::Received PipeEnd::receive() {
  if (fd_ < 0) throw OSError("the pipe end is closed");
  if (!readable_) throw OSError("connection is write-only");
  Header h{};
  if (!read_all(fd_, &h, sizeof h, false)) throw EOFError("the other end of the pipe is closed");
  // A message over a bound cannot be skipped reliably: the end is closed, as on a protocol
  // error, rather than read on out of step.
  auto refuse = [&](const std::string& why) {
    close();
    return ProtocolError("pipe message refused: " + why);
  };
  if (h.zero != 0) throw refuse("malformed header");
  if (h.body_bytes > kLimits.max_body_bytes)
    throw refuse("body of " + std::to_string(h.body_bytes) + " bytes");
  if (h.blobs > kLimits.max_frames) throw refuse(std::to_string(h.blobs) + " bytes values");
  std::string body(h.body_bytes, '\0');
  read_all(fd_, body.data(), body.size(), true);
  Received r;
  std::uint64_t total = h.body_bytes;
  for (std::uint32_t i = 0; i < h.blobs; ++i) {
    std::uint64_t size = 0;
    read_all(fd_, &size, sizeof size, true);
    total += size;
    if (total > kLimits.max_message_bytes) throw refuse("more than 256 MiB");
    Bytes blob(static_cast<std::size_t>(size));
    read_all(fd_, blob.data(), blob.size(), true);
    r.blobs.push_back(std::move(blob));
  }
  try {
    r.handle = msgpack::unpack(body.data(), body.size(), nullptr, nullptr,
                               wire::unpack_limits(body.size(), kLimits));
  } catch (const std::exception& e) {
    throw ProtocolError(std::string("malformed pipe message: ") + e.what());
  }
  return r;
}

std::pair<PipeEnd, PipeEnd> Pipe(bool duplex) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) throw_os_error(errno, "pipe");
  if (duplex) return {PipeEnd(fds[0], true, true), PipeEnd(fds[1], true, true)};
  // One way, as Python's: the first end receives, the second sends.
  ::shutdown(fds[0], SHUT_WR);
  ::shutdown(fds[1], SHUT_RD);
  return {PipeEnd(fds[0], true, false), PipeEnd(fds[1], false, true)};
}

}  // namespace zmanager
