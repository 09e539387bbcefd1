// The server's one table of live objects and of who holds references to them.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "executor.hpp"
#include "zmanager/expose.hpp"

namespace zmanager::server {

using OwnerId = std::uint64_t;
/// Owners that are not client sessions.
inline constexpr OwnerId kPinnedOwner = 1;    // register_shared objects: never released
inline constexpr OwnerId kInFlightOwner = 2;  // references carried by calls being run
inline constexpr OwnerId kLocalOwner = 3;     // proxies held by objects inside the server

struct Object {
  Object(std::uint64_t id, std::string type_id, std::shared_ptr<void> instance,
         std::shared_ptr<const detail::DispatchTable> table, WorkerPool& pool)
      : id(id),
        type_id(std::move(type_id)),
        instance(std::move(instance)),
        table(std::move(table)),
        strand(std::make_shared<Strand>(pool)) {}
  const std::uint64_t id;
  const std::string type_id;
  const std::shared_ptr<void> instance;
  const std::shared_ptr<const detail::DispatchTable> table;
  const std::shared_ptr<Strand> strand;
};

/// Thread-safe. An object stays in the table while any owner holds a reference; when the last
/// one goes it is removed, and destroyed once the calls still running on it finish.
class ObjectTable {
 public:
  /// A client session may hold references to at most `max_per_session` objects.
  ObjectTable(WorkerPool& pool, std::size_t max_per_session);

  /// Adds a new object with no references yet; the caller adds the first.
  std::shared_ptr<Object> add(std::string type_id, std::shared_ptr<void> instance,
                              std::shared_ptr<const detail::DispatchTable> table);
  /// The object already serving `instance`, or a new one.
  std::shared_ptr<Object> find_or_add(std::string type_id, std::shared_ptr<void> instance,
                                      std::shared_ptr<const detail::DispatchTable> table);
  std::shared_ptr<Object> get(std::uint64_t id) const;

  void open_owner(OwnerId owner);
  /// Drops every reference `owner` holds; later increfs for it fail.
  void close_owner(OwnerId owner);
  /// Throws KeyError for an unknown object, ConnectionError for a closed owner, LimitError when
  /// a client session would hold more objects than its limit.
  void incref(OwnerId owner, std::uint64_t id);
  void decref(OwnerId owner, std::uint64_t id);
  /// Drops every object (server shutdown).
  void clear();

  std::size_t size() const;
  std::map<std::string, std::uint64_t> count_by_type() const;
  std::uint64_t created() const;
  std::uint64_t destroyed() const;
  /// How many increfs the per-session limit refused.
  std::uint64_t refused() const;

 private:
  struct Entry {
    std::shared_ptr<Object> object;
    std::size_t refs = 0;
  };
  // Removes entries whose count reached zero; returns them so that they are destroyed after
  // the lock is released (a destructor may release proxies, which re-enters the table).
  void drop(std::uint64_t id, std::vector<std::shared_ptr<Object>>& dead);

  WorkerPool& pool_;
  const std::size_t max_per_session_;
  mutable std::mutex mu_;
  std::uint64_t next_id_ = 1;
  std::unordered_map<std::uint64_t, Entry> objects_;
  std::unordered_map<const void*, std::uint64_t> by_instance_;
  std::unordered_map<OwnerId, std::unordered_map<std::uint64_t, std::size_t>> owners_;
  std::uint64_t created_ = 0;
  std::uint64_t destroyed_ = 0;
  std::uint64_t refused_ = 0;
};

}  // namespace zmanager::server
