// The classic remote-queue pattern (Python: register('get_queue', callable=lambda: queue)).
// get() on an empty queue parks the call on the server until a put() answers it: a consumer
// waiting costs the server memory, not a thread.
#pragma once

#include <deque>
#include <string>

#include <zmanager/zmanager.hpp>

class JobQueue {
 public:
  void put(std::string job) {
    while (!waiting_.empty()) {
      auto consumer = std::move(waiting_.front());
      waiting_.pop_front();
      // False when that consumer is gone (its call timed out, or its client died): the job
      // goes to the next one, or waits in the queue.
      if (consumer.send(job)) return;
    }
    jobs_.push_back(std::move(job));
  }

  zmanager::Deferred<std::string> get() {
    if (jobs_.empty()) {
      waiting_.push_back(zmanager::defer<std::string>());
      return zmanager::Deferred<std::string>::pending();
    }
    std::string job = std::move(jobs_.front());
    jobs_.pop_front();
    return job;
  }

  std::size_t qsize() const { return jobs_.size(); }
  /// Consumers parked in get().
  std::size_t waiting() const { return waiting_.size(); }

 private:
  std::deque<std::string> jobs_;
  std::deque<zmanager::Responder<std::string>> waiting_;
};
ZMANAGER_EXPOSE(JobQueue, put, get, qsize, waiting)
