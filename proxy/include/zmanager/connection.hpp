// Opening a client connection to a zmanager server.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "zmanager/detail/channel.hpp"
#include "zmanager/proxy.hpp"

namespace zmanager {

/// What a client does when it loses its session: the server restarted, the network failed for
/// longer than the session ttl, or this process was paused past it (docs/reliability.md).
struct ReconnectOptions {
  /// How long to keep trying to open a new session before every call fails with
  /// ConnectionError for good; zero: never reconnect (the first loss is final).
  std::chrono::milliseconds budget{30000};
  /// The pause after a failed attempt, doubled after each one up to `max_delay`.
  std::chrono::milliseconds first_delay{100};
  std::chrono::milliseconds max_delay{2000};
};

struct ConnectOptions {
  std::string address;  // "tcp://host:port", "ipc:///path", ...
  std::string authkey;
  /// How long to wait for the server to answer the handshake.
  std::chrono::milliseconds timeout{10000};
  /// A name for this client in the server's logs.
  std::string name;
  /// The timeout of every call made through a proxy that sets none (see with_timeout); none:
  /// calls wait as long as they need (a server that dies is still noticed, by its silence).
  CallTimeout call_timeout;
  ReconnectOptions reconnect;
  /// How long a thread waiting for a reply over unix:// polls for it before it sleeps: on the
  /// same host a reply often comes sooner than a sleeping thread wakes. Polling that does not
  /// pay (more busy threads than CPUs) soon stops by itself; zero never polls. Not over
  /// ZeroMQ, whose I/O thread needs the CPU a polling thread would take (docs/performance.md).
  std::chrono::microseconds spin_before_sleep{50};
};

/// Connects and authenticates (mutual HMAC-SHA256); throws ConnectionError when the server does
/// not answer in time, AuthenticationError when the keys differ, ProtocolError when versions
/// are incompatible. The connection carries any number of calls in flight and is thread-safe.
/// When its session is lost it opens a new one on its own (`options.reconnect`).
std::shared_ptr<detail::Channel> connect(const ConnectOptions& options);

/// A proxy on the server itself (object 0): create, shared, stats, shutdown, describe.
DynamicProxy server_proxy(const std::shared_ptr<detail::Channel>& channel);

}  // namespace zmanager
