// Takes jobs until it gets "stop"; prints how many it did.
// Usage: queue_consumer [--address A] [--authkey K]
#include <iostream>

#include "args.hpp"
#include "job_queue.hpp"

int main(int argc, char** argv) {
  QueueArgs args(argc, argv);
  zmanager::BaseManager manager(args.options);
  manager.connect();
  auto queue = manager.get_shared<JobQueue>("get_queue");
  int done = 0;
  for (std::string job = queue.get(); job != "stop"; job = queue.get()) ++done;
  std::cout << "consumed " << done << " jobs" << std::endl;
}
