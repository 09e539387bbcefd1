// Python: MyManager(address=('', 50000), authkey=b'abc').get_server().serve_forever()
// Usage: maths_server [--address tcp://0.0.0.0:50000] [--authkey KEY]  (or $ZMANAGER_AUTHKEY)
//                     [--session-ttl 10s] [--heartbeat 1s]  (how soon a silent client's session
//                     ends and what it held is released; how often clients heartbeat)
// Prints the address it listens on (with port 0 resolved) as its first line.
#include <cstring>
#include <iostream>

#include "maths.hpp"

int main(int argc, char** argv) try {
  zmanager::ManagerOptions options{.address = "tcp://0.0.0.0:50000"};
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--address")) options.address = argv[i + 1];
    if (!std::strcmp(argv[i], "--authkey")) options.authkey = argv[i + 1];
    if (!std::strcmp(argv[i], "--session-ttl"))
      options.session_ttl = zmanager::parse_duration(argv[i + 1]);
    if (!std::strcmp(argv[i], "--heartbeat"))
      options.heartbeat_interval = zmanager::parse_duration(argv[i + 1]);
  }
  zmanager::BaseManager manager(options);
  manager.register_type<MathsClass>("Maths");
  auto& server = manager.get_server();
  std::cout << server.address() << std::endl;
  server.serve_forever();  // until a client asks for shutdown, or SIGINT/SIGTERM
} catch (const zmanager::Error& e) {
  std::cerr << "maths_server: " << e.what() << '\n';
  return 2;
}
