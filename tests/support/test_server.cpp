// Serves the test types until told to stop; prints its address first.
//   zmanager_test_server AUTHKEY [ADDRESS]
#include <iostream>

#include "test_types.hpp"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: zmanager_test_server AUTHKEY [ADDRESS]\n";
    return 2;
  }
  zmanager::BaseManager manager(
      {.address = argc > 2 ? argv[2] : "tcp://127.0.0.1:0", .authkey = argv[1]});
  test::register_all(manager);
  zmanager::register_builtins(manager);  // the built-in types, for clients in other languages
  auto& server = manager.get_server();
  std::cout << server.address() << std::endl;
  server.serve_forever();
}
