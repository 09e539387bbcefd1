// zmanager::BaseManager: Python's BaseManager life cycle in C++.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "zmanager/connection.hpp"
#include "zmanager/registry.hpp"
#include "zmanager/server.hpp"

namespace zmanager {

struct ManagerOptions {
  /// Server address: where start()/get_server() listen, or where connect() goes. Port 0 picks a
  /// free port (address() tells which).
  std::string address = "tcp://127.0.0.1:0";
  /// A server started here also listens on this Unix socket ("unix:///run/app.sock") for
  /// clients on its host, which then bypass ZeroMQ (ServerOptions::local_address); start()
  /// connects this process through it.
  std::string local_address;
  /// The shared secret. Unset: $ZMANAGER_AUTHKEY if set, else a random key (which a server
  /// started with start() shares with this process only).
  std::optional<std::string> authkey;
  std::chrono::milliseconds connect_timeout{10000};
  std::chrono::milliseconds heartbeat_interval{1000};
  std::chrono::milliseconds session_ttl{10000};
  std::size_t threads = 0;
  /// The timeout of every call whose proxy sets none (zmanager::with_timeout); none: calls wait
  /// as long as they need, as in Python (docs/reliability.md).
  CallTimeout call_timeout;
  /// How a client reopens its session after losing it (a server restarted at the same
  /// address, a network cut past the ttl): the retry budget and its backoff.
  ReconnectOptions reconnect;
  /// How long a client thread waiting for a reply over unix:// polls before it sleeps
  /// (ConnectOptions::spin_before_sleep); zero never polls.
  std::chrono::microseconds spin_before_sleep{50};
  /// A server started here lends its same-host clients, of either transport, shared segments
  /// for their large bytes, at most this much memory in all (ServerOptions::segment_pool_bytes);
  /// 0: none.
  std::size_t segment_pool_bytes = std::size_t{256} << 20;
};

/// A duration as written on a command line or in an environment variable (`--session-ttl 10s`):
/// a number with a unit, ms, s, m or h ("500ms", "1.5s", "2m"); a bare number is seconds.
/// ValueError for anything else, negative values included.
std::chrono::milliseconds parse_duration(std::string_view text);

/// Registers types, then either runs a server (`start()` in a child process, or
/// `get_server().serve_forever()` here) or connects to one, and creates proxies.
///
/// Registration spelling follows Python: `register_type<MathsClass>("Maths")`. A client needs
/// the registration only to name the type; the server needs it to build objects.
class BaseManager {
 public:
  explicit BaseManager(ManagerOptions options = {});
  ~BaseManager();  // shuts down a server this manager started
  BaseManager(const BaseManager&) = delete;
  BaseManager& operator=(const BaseManager&) = delete;

  template <detail::Exposed T>
  void register_type(std::string type_id, TypeOptions options = {}) {
    registry_.register_type<T>(std::move(type_id), std::move(options));
  }
  template <detail::Exposed T, class F>
  void register_type(std::string type_id, F factory, TypeOptions options = {}) {
    registry_.register_type<T>(std::move(type_id), std::move(factory), std::move(options));
  }
  template <detail::Exposed T>
  void register_shared(std::string name, std::shared_ptr<T> object, TypeOptions options = {}) {
    registry_.register_shared<T>(std::move(name), std::move(object), std::move(options));
  }

  /// Runs `hook` in the serving process once the server stops (Registry::at_server_stop).
  void at_server_stop(std::function<void()> hook) { registry_.at_server_stop(std::move(hook)); }

  /// Starts a server in a child process; returns once it accepts connections, connected to it.
  /// ProcessError if already started or shut down.
  void start();
  /// Connects to a running server. ProcessError if already started/connected or shut down.
  void connect();
  /// Stops a server this manager started (waits for the child) and closes the connection;
  /// proxies then fail with ConnectionError. Idempotent.
  void shutdown();
  /// A server bound to the options' address, to run here with serve_forever().
  Server& get_server();

  /// The server's address: with port 0 resolved once started or bound.
  std::string address() const;
  const std::string& authkey() const { return authkey_; }
  bool running() const { return state_ == State::kStarted || state_ == State::kConnected; }

  /// A new object of a registered type on the server (Python's `manager.Maths(*args)`).
  template <detail::Exposed T, class... A>
  Proxy<T> create(std::string_view type_id, A&&... args) {
    return server().template call<Proxy<T>>("create", std::string(type_id),
                                            std::forward_as_tuple(std::forward<A>(args)...));
  }
  /// The same for a type known here only by its id: a proxy for dynamic calls.
  template <class... A>
  DynamicProxy create_dynamic(std::string_view type_id, A&&... args) {
    return server().template call<DynamicProxy>("create", std::string(type_id),
                                                std::forward_as_tuple(std::forward<A>(args)...));
  }
  /// The object the server shares under `name` (register_shared); every caller gets a proxy
  /// to the same object. After a reconnection the proxy finds the object again by this name.
  template <class T>
  Proxy<T> get_shared(std::string_view name) {
    auto proxy = server().template call<Proxy<T>>("shared", std::string(name));
    detail::remember_shared_name(proxy.ref(), std::string(name));
    return proxy;
  }
  /// The same as a proxy for dynamic calls.
  DynamicProxy get_shared_dynamic(std::string_view name) { return get_shared<Dynamic>(name); }
  ServerStats stats() { return server().call<ServerStats>("stats"); }
  /// Asks the server this manager is connected to to stop (any client may; it is authenticated).
  void shutdown_server() { server().call<void>("shutdown"); }

  const Registry& registry() const { return registry_; }

 private:
  enum class State { kInitial, kStarted, kConnected, kShutdown };
  DynamicProxy server();
  void ensure_initial(const char* what) const;

  ManagerOptions options_;
  std::string authkey_;
  Registry registry_;
  State state_ = State::kInitial;
  std::string address_;
  std::shared_ptr<detail::Channel> channel_;
  std::unique_ptr<Server> server_;
  pid_t child_ = -1;
  int lifeline_ = -1;  // write end kept open while we live; the child stops when it reads EOF
};

}  // namespace zmanager
