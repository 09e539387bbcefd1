// Loading the plugins of zmanager-server (<zmanager/plugin.hpp>).
#pragma once

#include <memory>
#include <string>

#include "zmanager/plugin.hpp"

namespace zmanager::server_app {

/// A loaded plugin library. It must outlive the manager it registered with: the manager's
/// dispatch tables and factories are code in the library.
class Plugin {
 public:
  /// Loads the library and finds its entry point; UsageError naming the path if either fails.
  explicit Plugin(std::string path);

  /// Runs the plugin's registration; UsageError carrying what it threw.
  void register_with(SyncManager& manager) const;
  const std::string& path() const { return path_; }

 private:
  struct Unload {
    void operator()(void* handle) const;
  };
  std::string path_;
  std::unique_ptr<void, Unload> library_;
  PluginEntryPoint* entry_point_ = nullptr;
};

}  // namespace zmanager::server_app
