// The exception tree every zmanager failure belongs to. Names follow Python's so that a user of
// multiprocessing.managers recognises them; each carries what the remote side reported.
#pragma once

#include <stdexcept>
#include <string>

namespace zmanager {

/// Base of every zmanager exception.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The remote method raised. `type()` names the thrown type (demangled C++ name, or a Python-style
/// name such as "KeyError" for zmanager's own errors); `method()` and `object()` say where.
class RemoteError : public Error {
 public:
  RemoteError(std::string type, std::string message, std::string method = {},
              std::string object = {}, std::string kind = "raised");
  const std::string& type() const noexcept { return type_; }
  const std::string& message() const noexcept { return message_; }
  const std::string& method() const noexcept { return method_; }
  const std::string& object() const noexcept { return object_; }
  /// The error kind from the wire ("raised", "bad_request", ...): see docs/protocol.md.
  const std::string& kind() const noexcept { return kind_; }

 private:
  std::string type_, message_, method_, object_, kind_;
};

#define ZMANAGER_DEFINE_ERROR(Name) \
  class Name : public Error {       \
   public:                          \
    using Error::Error;             \
    Name() : Error(#Name) {}        \
  };

ZMANAGER_DEFINE_ERROR(Empty)
ZMANAGER_DEFINE_ERROR(Full)
ZMANAGER_DEFINE_ERROR(BrokenBarrierError)
ZMANAGER_DEFINE_ERROR(KeyError)
ZMANAGER_DEFINE_ERROR(IndexError)
ZMANAGER_DEFINE_ERROR(ValueError)
ZMANAGER_DEFINE_ERROR(TypeError)
ZMANAGER_DEFINE_ERROR(AttributeError)
ZMANAGER_DEFINE_ERROR(RuntimeError)
ZMANAGER_DEFINE_ERROR(AuthenticationError)
ZMANAGER_DEFINE_ERROR(ConnectionError)
ZMANAGER_DEFINE_ERROR(TimeoutError)
/// A proxy from an earlier session of this client: the session ended (the server restarted, or
/// heard nothing from the client within the session ttl) and the client has reconnected since,
/// so what the proxy referred to, and whatever its session held there, is gone or no longer
/// this client's (docs/reliability.md). Proxies from register_shared are found again on their
/// own; others must be made again.
class StaleProxyError : public ConnectionError {
 public:
  using ConnectionError::ConnectionError;
  StaleProxyError() : ConnectionError("StaleProxyError") {}
};
/// A client went over one of the server's bounds on what one client may hold: objects or parked
/// calls per session, sessions per server (docs/reliability.md). Other clients are unaffected.
ZMANAGER_DEFINE_ERROR(LimitError)
/// Life-cycle misuse: start() twice, start() after shutdown(), using a manager that is not
/// started or connected (Python's multiprocessing.ProcessError).
ZMANAGER_DEFINE_ERROR(ProcessError)
/// The peer broke the wire protocol (malformed frames, unsupported version, over a limit).
ZMANAGER_DEFINE_ERROR(ProtocolError)
/// Nothing more to receive: the other end of a Pipe is closed (Python's EOFError).
ZMANAGER_DEFINE_ERROR(EOFError)
/// An operating-system call failed (Python's OSError); `error_code()` is its errno, 0 when it
/// came from a remote side.
class OSError : public Error {
 public:
  explicit OSError(const std::string& what, int error_code = 0)
      : Error(what), error_code_(error_code) {}
  OSError() : OSError("OSError") {}
  int error_code() const noexcept { return error_code_; }

 private:
  int error_code_;
};
#define ZMANAGER_DEFINE_OS_ERROR(Name)                                                        \
  class Name : public OSError {                                                               \
   public:                                                                                    \
    explicit Name(const std::string& what, int error_code = 0) : OSError(what, error_code) {} \
    Name() : OSError(#Name) {}                                                                \
  };
ZMANAGER_DEFINE_OS_ERROR(FileExistsError)
ZMANAGER_DEFINE_OS_ERROR(FileNotFoundError)
ZMANAGER_DEFINE_OS_ERROR(BrokenPipeError)

#undef ZMANAGER_DEFINE_OS_ERROR
#undef ZMANAGER_DEFINE_ERROR

/// Throws the OSError subclass Python raises for `error_code` (EEXIST: FileExistsError, ENOENT:
/// FileNotFoundError, others OSError) with the message "[Errno N] <strerror>: '<subject>'".
[[noreturn]] void throw_os_error(int error_code, const std::string& subject);

/// Python-style name of a zmanager error ("KeyError"), or the demangled dynamic type name of any
/// other exception. This is what travels as the error's `type` on the wire.
std::string error_type_name(const std::exception& e);

/// Rethrows the typed exception named by a wire error: zmanager's own names map back to their
/// classes, anything else becomes RemoteError.
[[noreturn]] void throw_remote_error(const std::string& kind, const std::string& type,
                                     const std::string& message, const std::string& method,
                                     const std::string& object);

}  // namespace zmanager
