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
