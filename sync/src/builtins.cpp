// The type ids SyncManager serves, each with the factory Python's SyncManager.register gives it.
#include "objects.hpp"
#include "zmanager/sync.hpp"

namespace zmanager {

namespace {
using namespace sync;

std::function<void()> find_action(const detail::BarrierActions& actions,
                                  const std::optional<std::string>& name) {
  if (!name) return {};
  std::lock_guard lock(actions.mu);
  auto it = actions.by_name.find(*name);
  if (it == actions.by_name.end())
    throw KeyError("no barrier action named '" + *name + "' is registered on this server");
  return it->second;
}
}  // namespace

void register_builtins(BaseManager& m, std::shared_ptr<detail::BarrierActions> actions) {
  // Their methods never block (waits are parked replies): they run on the thread that read
  // them. Not a Barrier: its action is the user's code.
  const TypeOptions kShortCalls{.short_calls = true};
  if (!actions) actions = std::make_shared<detail::BarrierActions>();
  m.register_type<DictObject>(
      "dict", [](const zmanager::Value& initial) { return std::make_shared<DictObject>(initial); },
      kShortCalls);
  m.register_type<ListObject>(
      "list", [](const zmanager::Value& initial) { return std::make_shared<ListObject>(initial); },
      kShortCalls);
  m.register_type<ValueObject>(
      "Value",
      [](const std::string& typecode, zmanager::Value initial) {
        return std::make_shared<ValueObject>(typecode, std::move(initial));
      },
      kShortCalls);
  m.register_type<ArrayObject>(
      "Array",
      [](const std::string& typecode, const zmanager::Value& items) {
        return std::make_shared<ArrayObject>(typecode, items);
      },
      kShortCalls);
  m.register_type<NamespaceObject>("Namespace", kShortCalls);

  auto queue = [&](const char* type_id, QueueObject::Order order) {
    m.register_type<QueueObject>(
        type_id, [order](Int maxsize) { return std::make_shared<QueueObject>(order, maxsize); },
        kShortCalls);
  };
  queue("Queue", QueueObject::Order::kFifo);
  queue("JoinableQueue", QueueObject::Order::kFifo);  // Python's Queue has task_done/join too
  queue("LifoQueue", QueueObject::Order::kLifo);
  queue("PriorityQueue", QueueObject::Order::kPriority);

  m.register_type<LockObject>(
      "Lock", [] { return std::make_shared<LockObject>(false); }, kShortCalls);
  m.register_type<LockObject>(
      "RLock", [] { return std::make_shared<LockObject>(true); }, kShortCalls);
  m.register_type<SemaphoreObject>(
      "Semaphore", [](Int value) { return std::make_shared<SemaphoreObject>(value, false); },
      kShortCalls);
  m.register_type<SemaphoreObject>(
      "BoundedSemaphore", [](Int value) { return std::make_shared<SemaphoreObject>(value, true); },
      kShortCalls);
  m.register_type<ConditionObject>(
      "Condition",
      [](const zmanager::Value& lock) {
        if (lock.is_none())
          return std::make_shared<ConditionObject>(std::make_shared<LockCore>(/*reentrant=*/true));
        std::shared_ptr<LockObject> given;
        if (lock.holds<zmanager::Value::Ref>())
          given = detail::local_instance<LockObject>(lock.get<zmanager::Value::Ref>().ref);
        if (!given)
          throw TypeError("Condition(lock): expected a Lock or RLock of this server, got " +
                          lock.repr());
        return std::make_shared<ConditionObject>(given->core());
      },
      kShortCalls);
  m.register_type<EventObject>("Event", kShortCalls);
  m.register_type<BarrierObject>(
      "Barrier", [actions](Int parties, const std::optional<std::string>& action, Seconds timeout) {
        return std::make_shared<BarrierObject>(parties, find_action(*actions, action), timeout);
      });
}

void SyncManager::register_shared_dict(std::string name) {
  register_shared(std::move(name), std::make_shared<DictObject>(zmanager::Value()),
                  TypeOptions{.short_calls = true});
}

}  // namespace zmanager
