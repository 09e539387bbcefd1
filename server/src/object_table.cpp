#include "object_table.hpp"

namespace zmanager::server {

ObjectTable::ObjectTable(WorkerPool& pool, std::size_t max_per_session)
    : pool_(pool), max_per_session_(max_per_session) {
  for (OwnerId o : {kPinnedOwner, kInFlightOwner, kLocalOwner}) owners_[o];
}

std::shared_ptr<Object> ObjectTable::add(std::string type_id, std::shared_ptr<void> instance,
                                         std::shared_ptr<const detail::DispatchTable> table) {
  std::lock_guard lock(mu_);
  std::uint64_t id = next_id_++;
  auto object = std::make_shared<Object>(id, std::move(type_id), std::move(instance),
                                         std::move(table), pool_);
  by_instance_[object->instance.get()] = id;
  objects_[id] = Entry{object, 0};
  ++created_;
  return object;
}

std::shared_ptr<Object> ObjectTable::find_or_add(
    std::string type_id, std::shared_ptr<void> instance,
    std::shared_ptr<const detail::DispatchTable> table) {
  {
    std::lock_guard lock(mu_);
    auto it = by_instance_.find(instance.get());
    if (it != by_instance_.end()) return objects_.at(it->second).object;
  }
  return add(std::move(type_id), std::move(instance), std::move(table));
}

std::shared_ptr<Object> ObjectTable::get(std::uint64_t id) const {
  std::lock_guard lock(mu_);
  auto it = objects_.find(id);
  return it == objects_.end() ? nullptr : it->second.object;
}

void ObjectTable::open_owner(OwnerId owner) {
  std::lock_guard lock(mu_);
  owners_[owner];
}

void ObjectTable::close_owner(OwnerId owner) {
  std::vector<std::shared_ptr<Object>> dead;
  {
    std::lock_guard lock(mu_);
    auto it = owners_.find(owner);
    if (it == owners_.end()) return;
    auto held = std::move(it->second);
    owners_.erase(it);
    for (auto [id, count] : held) {
      auto obj = objects_.find(id);
      if (obj == objects_.end()) continue;
      obj->second.refs -= count;
      drop(id, dead);
    }
  }
}

void ObjectTable::incref(OwnerId owner, std::uint64_t id) {
  std::lock_guard lock(mu_);
  auto obj = objects_.find(id);
  if (obj == objects_.end()) throw KeyError("no object with id " + std::to_string(id));
  auto own = owners_.find(owner);
  if (own == owners_.end()) throw ConnectionError("the session holding this reference has ended");
  auto& held = own->second;
  if (owner > kLocalOwner && held.size() >= max_per_session_ && !held.count(id)) {
    ++refused_;
    throw LimitError("this session already holds references to " + std::to_string(held.size()) +
                     " objects, the server's limit (max_objects_per_session): release some");
  }
  ++obj->second.refs;
  ++held[id];
}

void ObjectTable::decref(OwnerId owner, std::uint64_t id) {
  std::vector<std::shared_ptr<Object>> dead;
  std::lock_guard lock(mu_);
  auto own = owners_.find(owner);
  if (own == owners_.end()) return;
  auto held = own->second.find(id);
  if (held == own->second.end()) return;  // not this owner's to drop: ignore, never underflow
  if (--held->second == 0) own->second.erase(held);
  auto obj = objects_.find(id);
  if (obj == objects_.end()) return;
  --obj->second.refs;
  drop(id, dead);
  // `dead` is destroyed after the lock: declared before it.
}

void ObjectTable::drop(std::uint64_t id, std::vector<std::shared_ptr<Object>>& dead) {
  auto it = objects_.find(id);
  if (it == objects_.end() || it->second.refs != 0) return;
  by_instance_.erase(it->second.object->instance.get());
  dead.push_back(std::move(it->second.object));
  objects_.erase(it);
  ++destroyed_;
}

void ObjectTable::clear() {
  std::vector<std::shared_ptr<Object>> dead;
  std::lock_guard lock(mu_);
  for (auto& [id, entry] : objects_) dead.push_back(std::move(entry.object));
  destroyed_ += objects_.size();
  objects_.clear();
  by_instance_.clear();
  for (auto& [owner, held] : owners_) held.clear();
}

std::size_t ObjectTable::size() const {
  std::lock_guard lock(mu_);
  return objects_.size();
}

std::map<std::string, std::uint64_t> ObjectTable::count_by_type() const {
  std::lock_guard lock(mu_);
  std::map<std::string, std::uint64_t> counts;
  for (const auto& [id, entry] : objects_) ++counts[entry.object->type_id];
  return counts;
}

std::uint64_t ObjectTable::created() const {
  std::lock_guard lock(mu_);
  return created_;
}

std::uint64_t ObjectTable::destroyed() const {
  std::lock_guard lock(mu_);
  return destroyed_;
}

std::uint64_t ObjectTable::refused() const {
  std::lock_guard lock(mu_);
  return refused_;
}

}  // namespace zmanager::server
