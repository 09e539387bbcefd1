// The command line and environment of zmanager-server.
#pragma once

#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "zmanager/manager.hpp"
#include "zmanager/wire/log.hpp"

namespace zmanager::server_app {

/// A bad flag, environment variable, key file or plugin: the message names which, and the
/// program exits with status 2.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Config {
  ManagerOptions manager;
  std::vector<std::string> plugins;
  std::optional<log::Level> log_level;
  bool help = false;
};

/// The value of an environment variable, or nothing when it is unset.
using Environment = std::function<std::optional<std::string>(const std::string& name)>;

/// The configuration from `args` (without the program name) and the environment; a flag beats
/// its variable. UsageError for anything it cannot use.
Config parse_config(const std::vector<std::string>& args, const Environment& env);

/// What --help prints: every flag with its environment variable.
std::string usage();

}  // namespace zmanager::server_app
