#include "options.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <sstream>
#include <string_view>

#include "zmanager/wire/stream.hpp"

namespace zmanager::server_app {
namespace {

struct Option {
  std::string_view flag;
  std::string_view variable;  // empty: the flag has none
  std::string_view value;     // empty: a switch
  std::string_view help;      // lines separated by '\n'
  bool repeatable = false;
};

constexpr std::string_view kDefaultBind = "tcp://0.0.0.0:50000";

// One table feeds the parser and --help, so that neither can forget a flag.
constexpr Option kOptions[] = {
    {"--bind", "ZMANAGER_BIND", "ADDR",
     "Where to listen (default tcp://0.0.0.0:50000). Port 0 picks a free port; the first line\n"
     "the server prints is the address it listens on, port resolved."},
    {"--local-address", "ZMANAGER_LOCAL_ADDRESS", "ADDR",
     "Also listen on a Unix socket for clients on this host, which connect with this same\n"
     "address and skip ZeroMQ: unix:///path/to.sock or unix://@name (abstract, no file).\n"
     "The first line printed stays the --bind address; --log-level info logs this one.\n"
     "Not with a unix:// --bind, which listens only there already."},
    {"--authkey-file", "ZMANAGER_AUTHKEY_FILE", "FILE",
     "The shared secret clients authenticate with, read from FILE (a trailing newline is\n"
     "dropped). An authkey is required: this, --authkey or their variables."},
    {"--authkey", "ZMANAGER_AUTHKEY", "KEY",
     "The shared secret itself. Other users can read a command line: prefer --authkey-file."},
    {"--plugin", "ZMANAGER_PLUGINS", "PATH",
     "A shared library registering user classes (<zmanager/plugin.hpp>), loaded before\n"
     "serving. Repeatable; the variable takes a colon-separated list. A PATH without '/'\n"
     "is searched for as dlopen(3) does.",
     true},
    {"--session-ttl", "ZMANAGER_SESSION_TTL", "DURATION",
     "How long a silent client's session lives; its objects are then released\n"
     "(default 10s). A number and a unit: 500ms, 1.5s, 2m, 1h."},
    {"--heartbeat", "ZMANAGER_HEARTBEAT", "DURATION",
     "How often clients are asked to heartbeat (default 1s)."},
    {"--log-level", "ZMANAGER_LOG_LEVEL", "LEVEL",
     "debug, info, warn or error (default warn). Logs go to stderr."},
    {"--curve-secret-key-file", "ZMANAGER_CURVE_SECRET_KEY_FILE", "FILE",
     "CurveZMQ encryption: not implemented yet. The server refuses to start rather than\n"
     "serve unencrypted when encryption was asked for."},
    {"--help", "", "", "This text (also -h)."},
};

// What was given for one option, and where ("--bind" or "ZMANAGER_BIND"), for messages.
struct Given {
  std::vector<std::string> values;
  std::string origin;
  const std::string& value() const { return values.front(); }
};
using GivenOptions = std::map<std::string_view, Given>;  // by flag

const Option& find_option(std::string_view flag) {
  for (const auto& option : kOptions)
    if (option.flag == flag) return option;
  throw UsageError("unknown flag '" + std::string(flag) + "' (see --help)");
}

GivenOptions read_flags(const std::vector<std::string>& args) {
  GivenOptions given;
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string_view arg = args[i];
    if (arg == "-h") arg = "--help";
    if (!arg.starts_with("--"))
      throw UsageError("unexpected argument '" + args[i] + "' (see --help)");
    auto equals = arg.find('=');
    const Option& option = find_option(arg.substr(0, equals));
    std::string flag(option.flag);
    std::string value;
    if (option.value.empty()) {
      if (equals != std::string_view::npos) throw UsageError(flag + " takes no value");
    } else if (equals != std::string_view::npos) {
      value = arg.substr(equals + 1);
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      throw UsageError(flag + " needs a value (" + std::string(option.value) + ")");
    }
    Given& entry = given[option.flag];
    if (!entry.values.empty() && !option.repeatable) throw UsageError(flag + " is given twice");
    entry.values.push_back(std::move(value));
    entry.origin = flag;
  }
  return given;
}

std::vector<std::string> split_paths(const std::string& list) {
  std::vector<std::string> paths;
  std::istringstream in(list);
  for (std::string path; std::getline(in, path, ':');)
    if (!path.empty()) paths.push_back(path);
  return paths;
}

GivenOptions read_variables(const Environment& env) {
  GivenOptions given;
  for (const auto& option : kOptions) {
    if (option.variable.empty()) continue;
    std::string name(option.variable);
    auto text = env(name);
    if (!text) continue;
    auto values = option.repeatable ? split_paths(*text) : std::vector<std::string>{*text};
    if (!values.empty()) given[option.flag] = Given{std::move(values), name};
  }
  return given;
}

const Given* find(const GivenOptions& given, std::string_view flag) {
  auto it = given.find(flag);
  return it == given.end() ? nullptr : &it->second;
}

// The flag if given, else its variable.
const Given* pick(const GivenOptions& flags, const GivenOptions& variables, std::string_view flag) {
  const Given* given = find(flags, flag);
  return given ? given : find(variables, flag);
}

std::string read_key_file(const Given& given) {
  const std::string& path = given.value();
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"),
                                                       &std::fclose);
  auto cannot_read = [&] {
    return UsageError(given.origin + ": cannot read '" + path + "': " + std::strerror(errno));
  };
  if (!file) throw cannot_read();
  std::string key;
  char buffer[4096];
  while (std::size_t n = std::fread(buffer, 1, sizeof buffer, file.get())) key.append(buffer, n);
  if (std::ferror(file.get())) throw cannot_read();
  // Files written by `echo` or an editor end in a newline that is not part of the key.
  if (key.ends_with('\n')) key.pop_back();
  if (key.ends_with('\r')) key.pop_back();
  if (key.empty()) throw UsageError(given.origin + ": '" + path + "' holds no key");
  return key;
}

// The key comes from one source: the flags if either key flag is given, else the variables, so
// that a key variable left in the environment for clients does not clash with a flag.
std::string authkey(const GivenOptions& flags, const GivenOptions& variables) {
  bool from_flags = find(flags, "--authkey-file") || find(flags, "--authkey");
  const GivenOptions& source = from_flags ? flags : variables;
  const Given* file = find(source, "--authkey-file");
  const Given* key = find(source, "--authkey");
  if (file && key)
    throw UsageError(file->origin + " and " + key->origin + " both give the authkey: keep one");
  if (file) return read_key_file(*file);
  if (key && key->value().empty()) throw UsageError(key->origin + " is empty");
  if (key) return key->value();
  throw UsageError(
      "no authkey: give --authkey-file FILE (or --authkey KEY, or set ZMANAGER_AUTHKEY_FILE or "
      "ZMANAGER_AUTHKEY)");
}

std::chrono::milliseconds positive_duration(const Given& given) {
  std::chrono::milliseconds duration;
  try {
    duration = parse_duration(given.value());
  } catch (const ValueError& e) {
    throw UsageError(given.origin + ": " + e.what());
  }
  if (duration.count() <= 0)
    throw UsageError(given.origin + ": must be at least 1ms, got '" + given.value() + "'");
  return duration;
}

log::Level log_level(const Given& given) {
  const std::string& name = given.value();
  if (name == "debug") return log::Level::kDebug;
  if (name == "info") return log::Level::kInfo;
  if (name == "warn") return log::Level::kWarn;
  if (name == "error") return log::Level::kError;
  throw UsageError(given.origin + ": not a log level: '" + name + "' (debug, info, warn or error)");
}

std::string bind_address(const Given* given) {
  if (!given) return std::string(kDefaultBind);
  if (given->value().empty()) throw UsageError(given->origin + " is empty");
  return given->value();
}

// The same-host address, checked here so that a bad one is a usage error naming its flag.
std::string local_address(const Given* given, const Given* bind) {
  if (!given) return {};
  const std::string& address = given->value();
  if (address.empty()) throw UsageError(given->origin + " is empty");
  if (!wire::is_unix_address(address))
    throw UsageError(given->origin + ": not a unix:// address: '" + address +
                     "' (unix:///path/to.sock or unix://@name)");
  try {
    wire::parse_unix_address(address);
  } catch (const ValueError& e) {
    throw UsageError(given->origin + ": " + e.what());
  }
  if (bind && wire::is_unix_address(bind->value()))
    throw UsageError(given->origin + " and " + bind->origin +
                     " are both unix:// addresses: a unix:// " + bind->origin +
                     " is the only place the server listens; keep one");
  return address;
}

std::vector<std::string> plugin_paths(const Given* given) {
  if (!given) return {};
  for (const auto& path : given->values)
    if (path.empty()) throw UsageError(given->origin + " is empty");
  return given->values;
}

}  // namespace

Config parse_config(const std::vector<std::string>& args, const Environment& env) {
  GivenOptions flags = read_flags(args);
  if (find(flags, "--help")) return Config{.help = true};
  GivenOptions variables = read_variables(env);
  if (const Given* curve = pick(flags, variables, "--curve-secret-key-file"))
    throw UsageError(curve->origin +
                     ": CurveZMQ encryption is not implemented in zmanager yet; refusing to "
                     "start rather than serve unencrypted");
  Config config;
  const Given* bind = pick(flags, variables, "--bind");
  config.manager.address = bind_address(bind);
  config.manager.local_address = local_address(pick(flags, variables, "--local-address"), bind);
  config.manager.authkey = authkey(flags, variables);
  if (const Given* ttl = pick(flags, variables, "--session-ttl"))
    config.manager.session_ttl = positive_duration(*ttl);
  if (const Given* heartbeat = pick(flags, variables, "--heartbeat"))
    config.manager.heartbeat_interval = positive_duration(*heartbeat);
  if (const Given* level = pick(flags, variables, "--log-level"))
    config.log_level = log_level(*level);
  config.plugins = plugin_paths(pick(flags, variables, "--plugin"));
  return config;
}

std::string usage() {
  std::ostringstream out;
  out << "Usage: zmanager-server [--bind ADDR] [--local-address ADDR]\n"
         "                       (--authkey-file FILE | --authkey KEY)\n"
         "                       [--plugin PATH]... [--session-ttl DURATION] [--heartbeat "
         "DURATION]\n"
         "                       [--log-level LEVEL]\n"
         "\n"
         "Serves every built-in type of SyncManager (dict, list, Queue, LifoQueue,\n"
         "PriorityQueue, JoinableQueue, Lock, RLock, Semaphore, BoundedSemaphore, Condition,\n"
         "Event, Barrier, Value, Array, Namespace) and the classes its plugins register, until\n"
         "a client asks it to shut down or SIGTERM or SIGINT arrives.\n"
         "\n"
         "Options (each with the environment variable it beats):\n";
  for (const auto& option : kOptions) {
    out << "  " << option.flag;
    if (!option.value.empty()) out << ' ' << option.value;
    if (!option.variable.empty()) out << "    (" << option.variable << ')';
    out << "\n      ";
    for (char c : option.help)
      out << (c == '\n' ? std::string_view("\n      ") : std::string_view(&c, 1));
    out << '\n';
  }
  out << "\n"
         "Exit status: 0 after a shutdown request, SIGTERM or SIGINT; 2 for a bad flag,\n"
         "variable, key file or plugin, or an address it cannot listen on; 1 if serving fails.\n";
  return out.str();
}

}  // namespace zmanager::server_app
