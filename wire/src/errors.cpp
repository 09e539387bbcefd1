#include "zmanager/errors.hpp"

#include <cxxabi.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <typeinfo>

namespace zmanager {

RemoteError::RemoteError(std::string type, std::string message, std::string method,
                         std::string object, std::string kind)
    : Error(type + ": " + message + (method.empty() ? "" : " (in " + method + ")")),
      type_(std::move(type)),
      message_(std::move(message)),
      method_(std::move(method)),
      object_(std::move(object)),
      kind_(std::move(kind)) {}

namespace {

std::string demangle(const char* mangled) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> out(
      abi::__cxa_demangle(mangled, nullptr, nullptr, &status), std::free);
  return status == 0 && out ? std::string(out.get()) : std::string(mangled);
}

// zmanager's own errors travel under their Python names; the table is the one place both
// directions are defined.
template <class E>
struct Named {
  const char* name;
};

template <class F>
bool visit_named(F&& f) {
  return f(Named<Empty>{"Empty"}) || f(Named<Full>{"Full"}) ||
         f(Named<BrokenBarrierError>{"BrokenBarrierError"}) || f(Named<KeyError>{"KeyError"}) ||
         f(Named<IndexError>{"IndexError"}) || f(Named<ValueError>{"ValueError"}) ||
         f(Named<TypeError>{"TypeError"}) || f(Named<AttributeError>{"AttributeError"}) ||
         f(Named<RuntimeError>{"RuntimeError"}) ||
         f(Named<AuthenticationError>{"AuthenticationError"}) ||
         f(Named<ConnectionError>{"ConnectionError"}) ||
         f(Named<StaleProxyError>{"StaleProxyError"}) || f(Named<TimeoutError>{"TimeoutError"}) ||
         f(Named<LimitError>{"LimitError"}) || f(Named<ProcessError>{"ProcessError"}) ||
         f(Named<ProtocolError>{"ProtocolError"}) || f(Named<OSError>{"OSError"}) ||
         f(Named<FileExistsError>{"FileExistsError"}) ||
         f(Named<FileNotFoundError>{"FileNotFoundError"}) ||
         f(Named<BrokenPipeError>{"BrokenPipeError"}) || f(Named<EOFError>{"EOFError"});
}

}  // namespace

std::string error_type_name(const std::exception& e) {
  std::string name;
  visit_named([&]<class E>(Named<E> n) {
    if (typeid(e) != typeid(E)) return false;
    name = n.name;
    return true;
  });
  return name.empty() ? demangle(typeid(e).name()) : name;
}

void throw_remote_error(const std::string& kind, const std::string& type,
                        const std::string& message, const std::string& method,
                        const std::string& object) {
  // Protocol-level failures keep the meaning a local caller expects, whatever type was named.
  if (kind == "auth") throw AuthenticationError(message);
  if (kind == "no_session" || kind == "shutdown") throw ConnectionError(message);
  visit_named([&]<class E>(Named<E> n) {
    if (type != n.name) return false;
    throw E(message + (method.empty() ? "" : " (in " + method + ")"));
  });
  throw RemoteError(type, message, method, object, kind);
}

void throw_os_error(int error_code, const std::string& subject) {
  std::string what = "[Errno " + std::to_string(error_code) + "] " + std::strerror(error_code) +
                     ": '" + subject + "'";
  if (error_code == EEXIST) throw FileExistsError(what, error_code);
  if (error_code == ENOENT) throw FileNotFoundError(what, error_code);
  if (error_code == EPIPE || error_code == ECONNRESET) throw BrokenPipeError(what, error_code);
  throw OSError(what, error_code);
}

}  // namespace zmanager
