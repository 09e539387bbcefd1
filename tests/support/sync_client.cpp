// A client process for the SyncManager tests. It reaches the objects a test shares through the
// server's shared dict "objects" (proxies stored in a dict come back as live proxies) and prints
// what it saw, one fact per line.
//   zmanager_sync_client ADDRESS AUTHKEY COMMAND [ARGS]
#include <atomic>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <thread>
#include <vector>

#include <zmanager/zmanager.hpp>

using namespace std::chrono_literals;
using zmanager::SyncManager;

namespace {

std::unique_ptr<SyncManager> connect(const std::string& address, const std::string& authkey) {
  auto m = std::make_unique<SyncManager>(
      zmanager::ManagerOptions{.address = address, .authkey = authkey});
  m->connect();
  return m;
}

template <class P>
P object(SyncManager& m, const std::string& name) {
  return m.shared_dict("objects")[name].as<P>();
}

// N gets waiting at once on one connection; prints each item received.
int get_many(SyncManager& m, int n) {
  auto queue = object<zmanager::QueueProxy<std::int64_t>>(m, "queue");
  std::vector<zmanager::Future<std::int64_t>> gets;
  for (int i = 0; i < n; ++i) gets.push_back(queue.get_async(true, 60s));
  for (auto& f : gets) std::cout << "got " << f.get() << '\n';
  return 0;
}

// Leaves a call parked on the server and exits (a clean exit: the session ends at once): a get
// on "queue", an acquire on "lock" or "semaphore", or a wait on "cond".
int park_then_exit(SyncManager& m, const std::string& what) {
  std::function<std::size_t()> parked;
  std::shared_ptr<void> abandoned;
  auto keep = [&](auto future) {
    abandoned = std::make_shared<decltype(future)>(std::move(future));
  };
  if (what == "queue") {
    auto queue = object<zmanager::QueueProxy<std::int64_t>>(m, "queue");
    keep(queue.get_async(true, 60s));
    parked = [queue] { return queue.waiting_getters(); };
  } else if (what == "lock") {
    auto lock = object<zmanager::LockProxy>(m, "lock");
    keep(lock.acquire_async(true, 60s));
    parked = [lock] { return lock.waiting(); };
  } else if (what == "semaphore") {
    auto sem = object<zmanager::SemaphoreProxy>(m, "semaphore");
    keep(sem.acquire_async(true, 60s));
    parked = [] { return std::size_t{1}; };  // acquire_async is answered or parked in order
    sem.get_value();                         // a later call on the same connection: it has run
  } else if (what == "cond") {
    auto cond = object<zmanager::ConditionProxy>(m, "cond");
    cond.acquire();
    keep(cond.dynamic().call_async<bool>("wait", zmanager::detail::thread_token(), 60.0));
    parked = [cond] { return cond.waiting(); };
  } else {
    std::cerr << "nothing to park on: " << what << '\n';
    return 2;
  }
  for (int i = 0; i < 10000 && parked() == 0; ++i) std::this_thread::sleep_for(1ms);
  std::cout << "parked " << parked() << std::endl;
  return 0;
}

// Takes tasks until a negative sentinel; squares each into the "done" list.
int queue_worker(SyncManager& m) {
  auto tasks = object<zmanager::QueueProxy<std::int64_t>>(m, "tasks");
  auto done = object<zmanager::ListProxy<std::int64_t>>(m, "done");
  int worked = 0;
  for (int i = 0; i < 100000; ++i) {
    std::int64_t task = tasks.get(true, 30s);
    if (task < 0) {
      tasks.task_done();
      break;
    }
    done.append(task * task);
    ++worked;
    tasks.task_done();
  }
  std::cout << "worked " << worked << '\n';
  return 0;
}

// Releases a lock this client did not acquire; prints "released" or the error's name.
int release(SyncManager& m, const std::string& name) {
  auto lock = object<zmanager::DynamicProxy>(m, name);
  try {
    lock.call<void>("release", zmanager::detail::thread_token());
    std::cout << "released\n";
  } catch (const zmanager::Error& e) {
    std::cout << zmanager::error_type_name(e) << '\n';
  }
  return 0;
}

// `clients` connections each wait in acquire() on the lock, then release it at once.
int acquire_many(SyncManager& m, const std::string& address, const std::string& authkey,
                 int clients) {
  auto shared = object<zmanager::LockProxy>(m, "lock");
  std::vector<std::unique_ptr<SyncManager>> connections;
  for (int i = 0; i < clients; ++i) connections.push_back(connect(address, authkey));
  std::atomic<int> acquired{0};
  std::vector<std::thread> threads;
  for (auto& c : connections) {
    threads.emplace_back([&, lock = object<zmanager::LockProxy>(*c, "lock")] {
      if (lock.acquire(true, 60s)) {
        ++acquired;
        lock.release();
      }
    });
  }
  for (auto& t : threads) t.join();
  std::cout << "acquired " << acquired << '\n';
  return acquired == clients ? 0 : 1;
}

int barrier_wait(SyncManager& m) {
  auto barrier = object<zmanager::BarrierProxy>(m, "barrier");
  try {
    std::cout << "index " << barrier.wait(30s) << '\n';
  } catch (const zmanager::Error& e) {
    std::cout << zmanager::error_type_name(e) << '\n';
  }
  return 0;
}

// Waits on the condition "cond" for up to `seconds`; prints whether it was notified.
int condition_wait(SyncManager& m, double seconds) {
  auto cond = object<zmanager::ConditionProxy>(m, "cond");
  std::lock_guard hold(cond);
  bool notified = cond.wait(std::chrono::duration<double>(seconds));
  std::cout << (notified ? "notified" : "timed out") << '\n';
  return 0;
}

int event_wait(SyncManager& m, double seconds) {
  auto event = object<zmanager::EventProxy>(m, "event");
  std::cout << (event.wait(std::chrono::duration<double>(seconds)) ? "set" : "not set") << '\n';
  return 0;
}

// Prints a call's outcome as the test reads it: "ok", or the error's type name.
template <class F>
void report(F&& call) {
  try {
    call();
    std::cout << "ok" << std::endl;
  } catch (const zmanager::Error& e) {
    std::cout << zmanager::error_type_name(e) << ": " << e.what() << std::endl;
  }
}

// Takes something that belongs to this session and keeps it while this process computes (no
// call in flight) for `seconds`; then reports whether it could still give it back (-1: returns
// from main at once without giving it back; -2: calls exit() at once). What:
// "lock" (prints its fencing token), "semaphore" (a permit), "tasks" (an item of a
// JoinableQueue, not marked done).
int hold(SyncManager& m, const std::string& what, double seconds) {
  std::function<void()> give_back;
  if (what == "lock") {
    auto lock = object<zmanager::LockProxy>(m, "lock");
    auto token = lock.acquire_token(true, 60s);
    if (!token) return 1;
    std::cout << "holding " << *token << std::endl;
    give_back = [lock] { lock.release(); };
  } else if (what == "semaphore") {
    auto sem = object<zmanager::SemaphoreProxy>(m, "semaphore");
    if (!sem.acquire(true, 60s)) return 1;
    std::cout << "holding" << std::endl;
    give_back = [sem] { sem.release(); };
  } else if (what == "tasks") {
    auto tasks = object<zmanager::QueueProxy<std::int64_t>>(m, "tasks");
    std::cout << "holding " << tasks.get(true, 60s) << std::endl;
    give_back = [tasks] { tasks.task_done(); };
  } else {
    std::cerr << "nothing to hold: " << what << '\n';
    return 2;
  }
  if (seconds == -2) std::exit(0);  // exit() from here: no destructor runs, the goodbye still goes
  if (seconds < 0) return 0;        // a clean exit still holding it
  auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(10ms);
  report(give_back);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::cerr << "usage: zmanager_sync_client ADDRESS AUTHKEY COMMAND [ARGS]\n";
    return 2;
  }
  std::string address = argv[1], authkey = argv[2], command = argv[3];
  std::vector<std::string> args(argv + 4, argv + argc);
  try {
    auto m = connect(address, authkey);
    if (command == "get-many") return get_many(*m, std::stoi(args.at(0)));
    if (command == "park-then-exit") return park_then_exit(*m, args.at(0));
    if (command == "queue-worker") return queue_worker(*m);
    if (command == "release") return release(*m, args.at(0));
    if (command == "acquire-many") return acquire_many(*m, address, authkey, std::stoi(args.at(0)));
    if (command == "barrier-wait") return barrier_wait(*m);
    if (command == "condition-wait") return condition_wait(*m, std::stod(args.at(0)));
    if (command == "event-wait") return event_wait(*m, std::stod(args.at(0)));
    if (command == "hold") return hold(*m, args.at(0), std::stod(args.at(1)));
    std::cerr << "unknown command " << command << '\n';
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "sync client: " << e.what() << '\n';
    return 1;
  }
}
