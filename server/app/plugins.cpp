#include "plugins.hpp"

#include <dlfcn.h>

#include <type_traits>

#include "options.hpp"

static_assert(std::is_same_v<decltype(zmanager_register_plugin), zmanager::PluginEntryPoint>);

namespace zmanager::server_app {
namespace {

std::string last_dl_error() {
  const char* error = ::dlerror();
  return error ? error : "unknown error";
}

}  // namespace

void Plugin::Unload::operator()(void* handle) const {
  ::dlclose(handle);
}

Plugin::Plugin(std::string path) : path_(std::move(path)) {
  // RTLD_NOW: a missing symbol is reported here, not as a crash mid-call. RTLD_LOCAL: plugins
  // do not resolve each other's symbols.
  library_.reset(::dlopen(path_.c_str(), RTLD_NOW | RTLD_LOCAL));
  if (!library_) throw UsageError("plugin '" + path_ + "': cannot load: " + last_dl_error());
  ::dlerror();
  void* symbol = ::dlsym(library_.get(), kPluginEntryPointName);
  if (!symbol)
    throw UsageError("plugin '" + path_ + "': not a zmanager plugin (no " + kPluginEntryPointName +
                     " entry point; define one with ZMANAGER_PLUGIN)");
  entry_point_ = reinterpret_cast<PluginEntryPoint*>(symbol);
}

void Plugin::register_with(SyncManager& manager) const {
  try {
    entry_point_(manager);
  } catch (const std::exception& e) {
    throw UsageError("plugin '" + path_ + "': registration failed: " + e.what());
  } catch (...) {
    throw UsageError("plugin '" + path_ + "': registration failed with a non-standard exception");
  }
}

}  // namespace zmanager::server_app
