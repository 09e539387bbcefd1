// A zmanager::Server with chosen options, serving in a child process.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "process.hpp"
#include "test_types.hpp"

namespace test {

/// How many objects of `type` the server holds, from its statistics.
inline std::uint64_t objects_of(zmanager::BaseManager& client, const std::string& type) {
  auto s = client.stats();
  auto it = s.objects_by_type.find(type);
  return it == s.objects_by_type.end() ? 0 : it->second;
}

/// A fresh address in Linux's abstract namespace (no socket file to clean up): unique to this
/// process and call, `what` naming its use in a failure message.
inline std::string abstract_unix_address(const std::string& what) {
  static int serial = 0;
  return "unix://@zmanager-test-" + what + "-" + std::to_string(::getpid()) + "-" +
         std::to_string(++serial);
}

struct ServerProcess {
  Child child;
  std::string address;
  std::string authkey;
  std::string local_address;  // ServerOptions::local_address, if it was given

  /// A client manager connected to this server (at `at`, else its address).
  std::unique_ptr<zmanager::BaseManager> connect(std::string at = {}) const {
    auto client = std::make_unique<zmanager::BaseManager>(zmanager::ManagerOptions{
        .address = at.empty() ? address : std::move(at), .authkey = authkey});
    client->connect();
    return client;
  }

  /// A server that also listens on a same-host address (ServerOptions::local_address).
  static ServerProcess start_with_local_address(zmanager::ServerOptions options = {}) {
    options.local_address = abstract_unix_address("local");
    return start(options);
  }

  static ServerProcess start(
      zmanager::ServerOptions options,
      const std::function<void(zmanager::BaseManager&)>& registrations = register_all) {
    if (options.authkey.empty()) options.authkey = "test-key";
    Child child = Child::fork_reporting([&](const auto& report) {
      zmanager::BaseManager m;  // used only to collect the registrations
      registrations(m);
      zmanager::Server server(m.registry(), options);
      report(server.address());
      server.serve_forever();
      return 0;
    });
    std::string address = child.read_line().value_or("");
    if (address.empty()) throw std::runtime_error("the test server did not start");
    return ServerProcess{std::move(child), address, options.authkey, options.local_address};
  }
};

}  // namespace test
