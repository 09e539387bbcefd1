// Serves the test types until told to stop; prints its address first.
//   zmanager_test_server AUTHKEY [ADDRESS [--session-ttl D] [--heartbeat D] [--no-shared]]
// --no-shared leaves out the register_shared objects (a server restarted without them).
#include <cstring>
#include <iostream>

#include "test_types.hpp"

int main(int argc, char** argv) try {
  if (argc < 2) {
    std::cerr << "usage: zmanager_test_server AUTHKEY [ADDRESS [--session-ttl D] [--heartbeat D] "
                 "[--no-shared]]\n";
    return 2;
  }
  zmanager::ManagerOptions options{.address = argc > 2 ? argv[2] : "tcp://127.0.0.1:0",
                                   .authkey = argv[1]};
  bool shared = true;
  for (int i = 3; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--no-shared"))
      shared = false;
    else if (i + 1 < argc && !std::strcmp(argv[i], "--session-ttl"))
      options.session_ttl = zmanager::parse_duration(argv[++i]);
    else if (i + 1 < argc && !std::strcmp(argv[i], "--heartbeat"))
      options.heartbeat_interval = zmanager::parse_duration(argv[++i]);
    else
      throw zmanager::ValueError(std::string("unknown argument ") + argv[i]);
  }
  zmanager::BaseManager manager(options);
  if (shared)
    test::register_all(manager);
  else
    test::register_types(manager);
  zmanager::register_builtins(manager);  // the built-in types, for clients in other languages
  auto& server = manager.get_server();
  std::cout << server.address() << std::endl;
  server.serve_forever();
} catch (const std::exception& e) {
  std::cerr << "zmanager_test_server: " << e.what() << '\n';
  return 2;
}
