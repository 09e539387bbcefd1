// Plugins for the zmanager-server program: a shared library that registers user classes.
//
//   // maths_plugin.cpp, built with add_library(maths_plugin MODULE maths_plugin.cpp) and
//   // target_link_libraries(maths_plugin PRIVATE zmanager::plugin)
//   #include <zmanager/plugin.hpp>
//   #include "maths.hpp"
//   ZMANAGER_PLUGIN(manager) { manager.register_type<MathsClass>("Maths"); }
//
//   $ zmanager-server --authkey-file key --plugin ./libmaths_plugin.so
//
// The server loads each plugin before it serves and calls its entry point once, with the
// manager whose server it then runs: the built-in types are registered already, and the plugin
// adds types, shared objects (register_shared, register_shared_dict) and Barrier actions
// (register_action). An exception it throws stops the server from starting, with its message.
//
// Build a plugin against the same zmanager as the server. Leave its symbols visible (no
// -fvisibility=hidden): the server exports its own copy of zmanager, and a plugin that binds to
// that copy shares the server's per-thread call state instead of keeping a second one.
#pragma once

#include "zmanager/sync.hpp"

namespace zmanager {

/// The signature of the entry point, and the name the server looks it up by.
using PluginEntryPoint = void(SyncManager& manager);
inline constexpr const char* kPluginEntryPointName = "zmanager_register_plugin";

}  // namespace zmanager

// Declared here so that a definition with another signature does not compile.
extern "C" void zmanager_register_plugin(zmanager::SyncManager& manager);

/// Defines the plugin's entry point; the body registers with `manager` (a SyncManager&).
#define ZMANAGER_PLUGIN(manager)                                                   \
  extern "C" __attribute__((visibility("default"))) void zmanager_register_plugin( \
      ::zmanager::SyncManager& manager)
