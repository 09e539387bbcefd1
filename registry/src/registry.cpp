#include "zmanager/registry.hpp"

namespace zmanager {

namespace {
thread_local CallContext* running_call = nullptr;
}

CallContext& CallContext::current() {
  if (!running_call) throw RuntimeError("zmanager::defer() called outside a server method");
  return *running_call;
}

CallContext::Scope::Scope(CallContext& ctx) : previous_(running_call) {
  running_call = &ctx;
}
CallContext::Scope::~Scope() {
  running_call = previous_;
}

void schedule_after(std::chrono::steady_clock::duration delay, std::function<void()> task) {
  auto* services = CallContext::current().services();
  if (!services) throw RuntimeError("schedule_after() needs a server to run the task");
  services->schedule(std::chrono::steady_clock::now() + delay, std::move(task));
}

const Registry::TypeEntry* Registry::find_type(std::string_view type_id) const {
  auto it = types_.find(type_id);
  return it == types_.end() ? nullptr : &it->second;
}

const Registry::SharedEntry* Registry::find_shared(std::string_view name) const {
  auto it = shared_.find(name);
  return it == shared_.end() ? nullptr : &it->second;
}

namespace detail {

std::shared_ptr<DispatchTable> DispatchTable::restricted(
    const std::vector<std::string>& exposed) const {
  auto t = std::make_shared<DispatchTable>();
  t->class_name = class_name;
  t->type = type;
  t->short_calls = short_calls;
  t->session_ended = session_ended;  // what a session holds is given back whatever is exposed
  for (const auto& name : exposed) {
    const MethodEntry* m = find(name);
    if (!m)
      throw ValueError("cannot expose '" + name + "': " + class_name + " declares no such method");
    t->methods.push_back(*m);
  }
  return t;
}

}  // namespace detail
}  // namespace zmanager
