// zmanager::Server: hosts objects and serves them to clients over ZeroMQ.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "zmanager/registry.hpp"

namespace zmanager {

struct ServerOptions {
  /// Where to listen: "tcp://0.0.0.0:50000"; port 0 picks a free port (see Server::address()).
  /// Any ZeroMQ transport, or "unix:///path" (or "unix://@name", abstract) for the same-host
  /// transport only.
  std::string address = "tcp://127.0.0.1:0";
  /// Also listen here for clients on this host: "unix:///run/zmanager.sock". The server's own
  /// poll loop reads these connections, without ZeroMQ's I/O threads in the way, so a call
  /// costs about half as much; a client's session ends as soon as its connection closes.
  std::string local_address;
  std::string authkey;
  /// How often clients are asked to heartbeat, and how long a silent session lives.
  std::chrono::milliseconds heartbeat_interval{1000};
  std::chrono::milliseconds session_ttl{10000};
  /// Threads that run methods; 0 means one per core, at least 2.
  std::size_t threads = 0;
  /// Bounds on one incoming message (all frames, the msgpack body, nesting depth).
  std::size_t max_message_bytes = std::size_t{256} << 20;
  std::size_t max_body_bytes = std::size_t{64} << 20;
  std::size_t max_depth = 64;
  /// Bounds on one client, so that it cannot exhaust the server for the others (LimitError):
  /// objects its session holds references to, calls it has parked (waiting in get, acquire,
  /// wait...), and sessions on the server.
  std::size_t max_objects_per_session = 1'000'000;
  std::size_t max_waiters_per_session = 100'000;
  std::size_t max_sessions = 10'000;
  /// Shared segments for the large bytes of same-host clients, at most this much memory in
  /// all: a blob of 64 KiB or more then crosses without being copied through the socket. Both
  /// transports use them: a unix:// connection, and a ZeroMQ client that proves it can map the
  /// server's memory files (docs/protocol.md, 1.3). 0: none (the bytes go through the socket).
  std::size_t segment_pool_bytes = std::size_t{256} << 20;
};

/// Counters a client can read with `BaseManager::stats()` (server method "stats").
struct ServerStats {
  std::uint64_t objects = 0;    // live objects (shared ones included)
  std::uint64_t sessions = 0;   // authenticated clients
  std::uint64_t created = 0;    // objects created since start
  std::uint64_t destroyed = 0;  // objects destroyed since start
  std::uint64_t calls = 0;      // calls dispatched
  std::uint64_t errors = 0;     // calls answered with an error
  std::uint64_t rejected = 0;   // malformed, oversized or unauthenticated messages
  std::uint64_t batches = 0;    // BATCH messages of calls received (zmanager::Batch)
  std::uint64_t auth_failures = 0;
  std::uint64_t expired_sessions = 0;
  std::map<std::string, std::uint64_t> objects_by_type;
  /// How often each limit refused something: "message" (size, frames, depth: ServerOptions'
  /// max_message_bytes, max_body_bytes, max_depth), "objects_per_session",
  /// "waiters_per_session", "sessions".
  std::map<std::string, std::uint64_t> limits_hit;
  /// Shared segments for same-host clients' large bytes (ServerOptions::segment_pool_bytes):
  /// made, and of those, free (neither lent to a connection nor holding bytes).
  std::uint64_t segments = 0;
  std::uint64_t segments_free = 0;
  MSGPACK_DEFINE_MAP(objects, sessions, created, destroyed, calls, errors, rejected, auth_failures,
                     expired_sessions, objects_by_type, limits_hit, batches, segments,
                     segments_free);
};

/// A server bound to its address from construction. `serve_forever()` runs it on the calling
/// thread until a client asks it to shut down, `stop()` is called, or SIGINT/SIGTERM arrives.
/// Calls on one object run one at a time (each object is a monitor); calls on different objects
/// run in parallel on a small pool; waiting calls park as pending replies, not threads.
class Server {
 public:
  Server(Registry registry, ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// The bound endpoint with the real port ("tcp://127.0.0.1:41234").
  std::string address() const;
  /// ServerOptions::local_address when there is one beside address(), else empty.
  std::string local_address() const;
  void serve_forever();
  /// Asks serve_forever() to return; safe from any thread.
  void stop();
  ServerStats stats() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace zmanager
