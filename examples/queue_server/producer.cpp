// Puts N jobs, then one "stop" per consumer.
// Usage: queue_producer [--address A] [--authkey K] JOBS CONSUMERS
#include <iostream>

#include "args.hpp"
#include "job_queue.hpp"

int main(int argc, char** argv) {
  QueueArgs args(argc, argv);
  int jobs = args.rest.size() > 0 ? std::stoi(args.rest[0]) : 10;
  int consumers = args.rest.size() > 1 ? std::stoi(args.rest[1]) : 1;
  zmanager::BaseManager manager(args.options);
  manager.connect();
  auto queue = manager.get_shared<JobQueue>("get_queue");
  for (int i = 0; i < jobs; ++i) queue.put("job " + std::to_string(i));
  for (int i = 0; i < consumers; ++i) queue.put("stop");
  std::cout << "produced " << jobs << " jobs" << std::endl;
}
