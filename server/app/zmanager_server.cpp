// zmanager-server: a generic server with every built-in type, and user classes from plugins.
// `zmanager-server --help` documents the flags and their environment variables.
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "options.hpp"
#include "plugins.hpp"

namespace zmanager::server_app {
namespace {

std::optional<std::string> getenv_string(const std::string& name) {
  const char* value = std::getenv(name.c_str());
  return value ? std::optional<std::string>(value) : std::nullopt;
}

std::string describe_types(const Registry& registry) {
  std::string names;
  for (const auto& [type_id, entry] : registry.types())
    names += (names.empty() ? "" : " ") + type_id;
  return names;
}

// Everything that can fail before serving, done in the constructor so that a failure is a
// start-up error (status 2) rather than a serving one.
class Program {
 public:
  explicit Program(const Config& config)
      : plugins_(load(config.plugins)), manager_(config.manager) {
    for (const auto& plugin : plugins_) {
      plugin.register_with(manager_);
      log::info("plugin '", plugin.path(), "' registered");
    }
    server_ = &manager_.get_server();  // binds: an address it cannot use fails here
    // On stderr: stdout's first line stays the address of --bind, which scripts read.
    if (std::string local = server_->local_address(); !local.empty())
      log::info("also listening on ", local, " for clients on this host");
    log::info("types served: ", describe_types(manager_.registry()));
  }

  Server& server() { return *server_; }

 private:
  static std::vector<Plugin> load(const std::vector<std::string>& paths) {
    std::vector<Plugin> plugins;
    for (const auto& path : paths) plugins.emplace_back(path);
    return plugins;
  }

  std::vector<Plugin> plugins_;  // declared first, so unloaded only once the manager is gone
  SyncManager manager_;
  Server* server_ = nullptr;  // the manager's
};

int run(const Config& config) {
  if (config.log_level) log::set_level(*config.log_level);
  std::optional<Program> program;
  try {
    program.emplace(config);
  } catch (const std::exception& e) {
    std::cerr << "zmanager-server: " << e.what() << '\n';
    return 2;
  }
  Server& server = program->server();
  std::cout << server.address() << std::endl;
  try {
    server.serve_forever();  // until a client's shutdown request, SIGTERM or SIGINT
  } catch (const std::exception& e) {
    std::cerr << "zmanager-server: " << e.what() << '\n';
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace zmanager::server_app

int main(int argc, char** argv) {
  using namespace zmanager::server_app;
  Config config;
  try {
    config = parse_config(std::vector<std::string>(argv + 1, argv + argc), getenv_string);
  } catch (const UsageError& e) {
    std::cerr << "zmanager-server: " << e.what() << '\n';
    return 2;
  }
  if (config.help) {
    std::cout << usage();
    return 0;
  }
  return run(config);
}
