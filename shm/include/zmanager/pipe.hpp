// zmanager::Pipe: Python's multiprocessing.Pipe for C++ processes on one host: two connected
// ends that send and receive whole values (msgpack, as on the wire), made before a fork (or
// handed to a spawned program by file descriptor).
#pragma once

#include <chrono>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "zmanager/bytes.hpp"
#include "zmanager/errors.hpp"
#include "zmanager/wire/codec.hpp"

namespace zmanager {

/// One end of a Pipe. Movable, not copyable; closed on destruction. Not for use by two threads
/// at once (as Python's Connection).
class PipeEnd {
 public:
  PipeEnd() = default;
  /// Adopts an open descriptor (an end a spawned program inherited: see fd()).
  PipeEnd(int fd, bool readable, bool writable)
      : fd_(fd), readable_(readable), writable_(writable) {}
  ~PipeEnd() { close(); }
  PipeEnd(PipeEnd&& other) noexcept;
  PipeEnd& operator=(PipeEnd&& other) noexcept;
  PipeEnd(const PipeEnd&) = delete;
  PipeEnd& operator=(const PipeEnd&) = delete;

  /// Sends one value: anything a proxy call can carry, except proxies. BrokenPipeError once
  /// the other end is closed; OSError on a read-only end.
  template <class T>
  void send(const T& value) {
    wire::Encoder enc;
    enc.pack(value);
    if (!enc.refs().empty()) throw TypeError("a proxy cannot be sent through a Pipe");
    send_encoded(enc.body(), enc.blobs());
  }

  /// Receives one value as T (TypeError if it is something else). Waits for it; EOFError once
  /// the other end is closed and nothing is left; OSError on a write-only end.
  template <class T>
  T recv() {
    Received message = receive();
    wire::DecodeScope scope(message.blobs, nullptr);
    return wire::convert<T>(message.handle.get(), "pipe message");
  }

  /// Whether a value (or the other end's closing) can be received within `timeout`.
  bool poll(std::chrono::milliseconds timeout = std::chrono::milliseconds(0)) const;

  void close() noexcept;
  bool closed() const noexcept { return fd_ < 0; }
  bool readable() const noexcept { return readable_; }
  bool writable() const noexcept { return writable_; }
  /// The descriptor, to pass to a spawned program (which adopts it with PipeEnd(fd, ...));
  /// it is close-on-exec unless inheritable(true) was called.
  int fd() const noexcept { return fd_; }
  void inheritable(bool on);

 private:
  struct Received {
    msgpack::object_handle handle;
    std::vector<Bytes> blobs;
  };
  void send_encoded(const msgpack::sbuffer& body, const std::vector<Bytes>& blobs);
  Received receive();

  int fd_ = -1;
  bool readable_ = false;
  bool writable_ = false;
};

/// Two connected ends. duplex: each end sends and receives (a socket pair); otherwise the first
/// end only receives and the second only sends, as Python's Pipe(duplex=False).
std::pair<PipeEnd, PipeEnd> Pipe(bool duplex = true);

}  // namespace zmanager
