#include <atomic>

#include "zmanager/sync.hpp"

namespace zmanager {

namespace detail {

std::uint64_t thread_token() {
  static std::atomic<std::uint64_t> last{0};
  thread_local const std::uint64_t token = ++last;
  return token;
}

BuiltinProxy::BuiltinProxy(DynamicProxy proxy, std::initializer_list<std::string_view> type_ids)
    : proxy_(std::move(proxy)) {
  if (!proxy_) return;
  for (auto id : type_ids)
    if (proxy_.type_id() == id) return;
  std::string expected;
  for (auto id : type_ids) expected += (expected.empty() ? "" : " or ") + std::string(id);
  throw TypeError("expected a proxy to " + expected + ", got one to " +
                  std::string(proxy_.type_id()));
}

}  // namespace detail

SyncManager::SyncManager(ManagerOptions options)
    : BaseManager(std::move(options)), actions_(std::make_shared<detail::BarrierActions>()) {
  register_builtins(*this, actions_);
}

void SyncManager::register_action(std::string name, std::function<void()> action) {
  std::lock_guard lock(actions_->mu);
  actions_->by_name[std::move(name)] = std::move(action);
}

}  // namespace zmanager
