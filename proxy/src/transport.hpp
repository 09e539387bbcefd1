// How a client's messages reach its server: a ZeroMQ DEALER socket (any host), or a Unix
// socket read by the server's own poll loop (same host; docs/protocol.md, "1.1"). Both carry
// the same messages; the Connection above them does not know which it has. Used by the thread
// that holds the connection's socket role only.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "zmanager/wire/protocol.hpp"

namespace zmanager::detail {

class Transport {
 public:
  /// Connects to `address` ("unix://..." for the same-host transport, else ZeroMQ). A
  /// connection that cannot be made yet is retried; messages sent meanwhile wait for it.
  static std::unique_ptr<Transport> open(const std::string& address, zmq::context_t& context);
  virtual ~Transport() = default;

  /// Sends a message. `keep`: the frames stay the caller's (sent as copies, which share a
  /// large frame's buffer); else they are taken.
  virtual void send(wire::Frames& frames, bool keep) = 0;
  /// A message that has arrived, without waiting.
  virtual std::optional<wire::Frames> receive() = 0;
  /// Waits until a message may have arrived, `wake_fd` (if not -1) is readable, or `timeout`
  /// passes; true when `wake_fd` is readable.
  virtual bool wait(std::chrono::milliseconds timeout, int wake_fd) = 0;
  /// Waits like wait() but watching no wake descriptor, where that costs the transport less
  /// (see Connection::kMostWaitedAlone): false, at once, where it does not.
  virtual bool wait_alone(std::chrono::milliseconds timeout) {
    (void)timeout;
    return false;
  }
  /// Why the connection broke since last asked (the server closed it: it stopped or died), if
  /// the transport can tell (ZeroMQ reconnects silently and cannot), or why its session must
  /// end (the server sent a malformed transport message).
  virtual std::optional<std::string> take_break() = 0;
  /// Sends what is queued, waiting up to the linger time, and closes.
  virtual void close_and_flush() = 0;
  /// A session opened with a server of `server_version`: large blobs may go through shared
  /// segments on this connection, where the transport has them (the same-host stream from
  /// version 5; ZeroMQ on the server's host from version 6).
  virtual void use_segments(std::uint64_t server_version) { (void)server_version; }
  /// Whether a thread waiting for a reply should poll before it sleeps (ReplySpin). Not through
  /// ZeroMQ: the reply comes through the client's own I/O thread, which a polling thread keeps
  /// from a CPU (on 2 vCPUs, polling for 50 to 200 us made sync calls slower as often as faster).
  virtual bool worth_polling() const { return false; }
};

}  // namespace zmanager::detail
