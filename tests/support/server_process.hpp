// A zmanager::Server with chosen options, serving in a child process.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "process.hpp"
#include "test_types.hpp"

namespace test {

struct ServerProcess {
  Child child;
  std::string address;
  std::string authkey;

  /// A client manager connected to this server.
  std::unique_ptr<zmanager::BaseManager> connect() const {
    auto client = std::make_unique<zmanager::BaseManager>(
        zmanager::ManagerOptions{.address = address, .authkey = authkey});
    client->connect();
    return client;
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
    return ServerProcess{std::move(child), address, options.authkey};
  }
};

}  // namespace test
