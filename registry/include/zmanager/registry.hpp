// The table of what a server can create and share, built by the user before serving.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <typeindex>
#include <unordered_map>
#include <vector>

#include "zmanager/expose.hpp"

namespace zmanager {

/// Per-registration options, Python's `register(..., exposed=...)`.
struct TypeOptions {
  /// The methods clients may call; empty means every method named in ZMANAGER_EXPOSE.
  std::vector<std::string> exposed;
  /// Every method returns quickly and never blocks (a wait is a parked reply, not a blocked
  /// thread). The server runs every call on the thread that read it when the object is idle;
  /// for other types it lends the reading of requests meanwhile, so that an idle thread takes
  /// it over after about a millisecond if the call is slow. Short calls skip the loan (two
  /// atomic operations); one that does take long delays the reading of every client's requests
  /// meanwhile. The built-in types (dict, list, queues, locks, ...) are registered so.
  bool short_calls = false;
};

/// Type ids and shared objects a manager knows. Built explicitly (an object of the manager, not
/// a global) so that two managers in one process can serve different sets.
class Registry {
 public:
  /// Builds an object from the msgpack argument array of a create request.
  using Factory = std::function<std::shared_ptr<void>(const msgpack::object& args)>;

  struct TypeEntry {
    std::string type_id;
    std::shared_ptr<const detail::DispatchTable> table;
    Factory factory;  // empty on a client that only needs the proxy type
  };
  struct SharedEntry {
    std::string name;
    std::shared_ptr<void> object;
    std::shared_ptr<const detail::DispatchTable> table;
  };

  /// `T` default-constructed for each create (when T is default-constructible).
  template <detail::Exposed T>
  void register_type(std::string type_id, TypeOptions options = {}) {
    Factory factory;
    if constexpr (std::is_default_constructible_v<T>) {
      factory = [where = type_id + "()"](const msgpack::object& args) -> std::shared_ptr<void> {
        detail::decode_args<std::tuple<>>(args, where);
        return std::make_shared<T>();
      };
    }
    add_type<T>(std::move(type_id), std::move(factory), options);
  }

  /// `factory(args...)` builds each object; its parameters are the create() arguments. It may
  /// return T, std::shared_ptr<T> or std::unique_ptr<T>.
  template <detail::Exposed T, class F>
  void register_type(std::string type_id, F factory, TypeOptions options = {}) {
    using Params = typename detail::MethodTraits<decltype(&F::operator())>::params;
    Factory f = [factory = std::move(factory),
                 where = type_id + "()"](const msgpack::object& args) -> std::shared_ptr<void> {
      auto params = detail::decode_args<Params>(args, where);
      return to_shared<T>(std::apply(factory, std::move(params)));
    };
    add_type<T>(std::move(type_id), std::move(f), options);
  }

  /// One object every client reaches by `name` (Python's `register(name, callable=lambda: obj)`).
  template <detail::Exposed T>
  void register_shared(std::string name, std::shared_ptr<T> object, TypeOptions options = {}) {
    auto table = table_for<T>(options);
    std::string key = name;
    shared_[std::move(key)] = SharedEntry{std::move(name), std::move(object), std::move(table)};
  }

  /// Runs `hook` in the serving process once a server built from this registry has stopped
  /// (its objects are released by then): where a manager cleans up what its server made, such
  /// as the segments a SharedMemoryManager tracks.
  void at_server_stop(std::function<void()> hook) { stop_hooks_.push_back(std::move(hook)); }
  const std::vector<std::function<void()>>& stop_hooks() const { return stop_hooks_; }

  const TypeEntry* find_type(std::string_view type_id) const;
  const SharedEntry* find_shared(std::string_view name) const;
  const std::map<std::string, TypeEntry, std::less<>>& types() const { return types_; }
  const std::map<std::string, SharedEntry, std::less<>>& shared() const { return shared_; }

  /// The type id T was registered under, or its class name when it was not.
  template <detail::Exposed T>
  std::string type_id_of() const {
    auto it = names_.find(std::type_index(typeid(T)));
    return it != names_.end() ? it->second : std::string(detail::Expose<T>::name);
  }

 private:
  template <class T, class R>
  static std::shared_ptr<void> to_shared(R&& made) {
    using D = std::decay_t<R>;
    if constexpr (std::is_same_v<D, std::shared_ptr<T>>)
      return made;
    else if constexpr (std::is_same_v<D, std::unique_ptr<T>>)
      return std::shared_ptr<T>(std::move(made));
    else
      return std::make_shared<T>(std::forward<R>(made));
  }

  template <class T>
  static std::shared_ptr<const detail::DispatchTable> table_for(const TypeOptions& options) {
    const auto& full = detail::dispatch_table<T>();
    if (options.exposed.empty() && !options.short_calls)
      return std::shared_ptr<const detail::DispatchTable>(std::shared_ptr<void>(), &full);
    auto table = options.exposed.empty() ? std::make_shared<detail::DispatchTable>(full)
                                         : full.restricted(options.exposed);
    table->short_calls = options.short_calls;
    return table;
  }

  template <class T>
  void add_type(std::string type_id, Factory factory, const TypeOptions& options) {
    names_[std::type_index(typeid(T))] = type_id;
    std::string key = type_id;
    types_[std::move(key)] =
        TypeEntry{std::move(type_id), table_for<T>(options), std::move(factory)};
  }

  std::map<std::string, TypeEntry, std::less<>> types_;
  std::map<std::string, SharedEntry, std::less<>> shared_;
  std::unordered_map<std::type_index, std::string> names_;
  std::vector<std::function<void()>> stop_hooks_;
};

}  // namespace zmanager
