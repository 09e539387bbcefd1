// Serves one shared job queue. Prints its address as the first line.
// Usage: queue_server [--address tcp://0.0.0.0:50000] [--authkey KEY] [--session-ttl 10s]
//                     [--heartbeat 1s]
#include <iostream>

#include "args.hpp"
#include "job_queue.hpp"

int main(int argc, char** argv) try {
  QueueArgs args(argc, argv);
  zmanager::BaseManager manager(args.options);
  manager.register_shared("get_queue", std::make_shared<JobQueue>());
  auto& server = manager.get_server();
  std::cout << server.address() << std::endl;
  server.serve_forever();
} catch (const zmanager::Error& e) {
  std::cerr << "queue_server: " << e.what() << '\n';
  return 2;
}
