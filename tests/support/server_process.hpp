// A zmanager::Server with chosen options, serving in a child process.
#pragma once

#include <unistd.h>

#include <functional>
#include <string>

#include "process.hpp"
#include "test_types.hpp"

namespace test {

struct ServerProcess {
  Child child;
  std::string address;
  std::string authkey;

  static ServerProcess start(
      zmanager::ServerOptions options,
      const std::function<void(zmanager::BaseManager&)>& registrations = register_all) {
    if (options.authkey.empty()) options.authkey = "test-key";
    int fds[2];
    if (::pipe(fds) != 0) throw std::runtime_error("pipe failed");
    Child child = Child::fork([&] {
      ::close(fds[0]);
      zmanager::BaseManager m;  // used only to collect the registrations
      registrations(m);
      zmanager::Server server(m.registry(), options);
      std::string line = server.address() + "\n";
      if (::write(fds[1], line.data(), line.size()) < 0) return 3;
      ::close(fds[1]);
      server.serve_forever();
      return 0;
    });
    ::close(fds[1]);
    std::string address;
    char c;
    while (::read(fds[0], &c, 1) == 1 && c != '\n') address += c;
    ::close(fds[0]);
    if (address.empty()) throw std::runtime_error("the test server did not start");
    return ServerProcess{std::move(child), address, options.authkey};
  }
};

}  // namespace test
