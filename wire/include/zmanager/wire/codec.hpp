// Encoding of values into a zmanager message and back: msgpack for the structure, separate
// frames for large byte buffers, ext types for object references. See docs/protocol.md.
#pragma once

#include <array>
#include <bit>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <msgpack.hpp>

// msgpack-c 4.1 packs a float with no fractional part as an integer (2.0 goes out as 2), so a
// float would arrive as an int in other languages and in zmanager::Value. On zmanager's wire a
// float stays a float: float64 for double, float32 for float. (Declared before any use, as an
// explicit specialization must be.)
namespace zmanager::wire {
/// msgpack's float encoding: the type byte, then the IEEE bits big-endian.
template <class Bits>
std::array<char, 1 + sizeof(Bits)> msgpack_float_bytes(unsigned char type, Bits bits) {
  std::array<char, 1 + sizeof(Bits)> out{static_cast<char>(type)};
  for (std::size_t i = 0; i < sizeof(Bits); ++i)
    out[1 + i] = static_cast<char>(bits >> (8 * (sizeof(Bits) - 1 - i)));
  return out;
}
}  // namespace zmanager::wire

template <>
inline msgpack::packer<msgpack::sbuffer>& msgpack::packer<msgpack::sbuffer>::pack_double(double d) {
  auto bytes = zmanager::wire::msgpack_float_bytes(0xcb, std::bit_cast<std::uint64_t>(d));
  append_buffer(bytes.data(), bytes.size());
  return *this;
}
template <>
inline msgpack::packer<msgpack::sbuffer>& msgpack::packer<msgpack::sbuffer>::pack_float(float f) {
  auto bytes = zmanager::wire::msgpack_float_bytes(0xca, std::bit_cast<std::uint32_t>(f));
  append_buffer(bytes.data(), bytes.size());
  return *this;
}

#include "zmanager/bytes.hpp"
#include "zmanager/errors.hpp"

namespace zmanager::detail {
class ObjectRef;
struct DispatchTable;
}  // namespace zmanager::detail

namespace zmanager::wire {

/// msgpack ext type codes used by the protocol.
enum ExtType : std::int8_t {
  kExtBlob = 1,   // payload: uint32 big-endian index of a blob frame of this message
  kExtRef = 2,    // payload: msgpack [object_id, typeid]: a reference to a server object
  kExtOpaque = 3  // payload: a Boost.Serialization binary archive (opaque to other languages)
};

/// Byte buffers at least this large travel as their own frame instead of inline msgpack bin.
inline constexpr std::size_t kBlobThreshold = 4096;

/// How object references cross the wire; implemented by the client connection and the server.
class RefHooks {
 public:
  virtual ~RefHooks() = default;
  /// A reference to `id` is being written into an outgoing message.
  virtual void on_export(std::uint64_t id) { (void)id; }
  /// A reference arrived in an incoming message; returns the handle that will own it.
  virtual std::shared_ptr<detail::ObjectRef> on_import(std::uint64_t id, std::string_view type) = 0;
  /// Server side: a method returned a new shared object; registers it (or finds it, when the
  /// same object was exported before) and returns its id and typeid.
  virtual std::pair<std::uint64_t, std::string> export_object(std::shared_ptr<void> object,
                                                              const detail::DispatchTable& table);
};

/// Collects one outgoing message: the msgpack body plus the side frames it refers to. While an
/// Encoder is active on a thread, Bytes and proxies packed on that thread use it; the packer
/// adaptors cannot reach their stream otherwise.
class Encoder {
 public:
  explicit Encoder(RefHooks* hooks = nullptr);
  ~Encoder();
  Encoder(const Encoder&) = delete;
  Encoder& operator=(const Encoder&) = delete;

  msgpack::packer<msgpack::sbuffer>& packer() { return packer_; }
  template <class T>
  Encoder& pack(const T& v) {
    packer_.pack(v);
    return *this;
  }

  std::uint32_t add_blob(const Bytes& b);
  /// Lets add_blob() send a Bytes' own storage instead of a copy when nothing else refers to
  /// it: for values that die once encoded (a reply's result), so nothing can change them while
  /// ZeroMQ still sends them.
  void share_unshared_blobs(bool on) { share_unshared_ = on; }
  void add_ref(std::uint64_t id);
  RefHooks* hooks() const { return hooks_; }
  /// Which of a client's sessions the references written so far belong to (0: none yet, or
  /// references that outlive sessions); a message never mixes two sessions' references.
  std::uint64_t session() const { return session_; }
  void set_session(std::uint64_t session) { session_ = session; }

  msgpack::sbuffer& body() { return *body_; }
  std::vector<Bytes>& blobs() { return blobs_; }
  const std::vector<std::uint64_t>& refs() const { return refs_; }

  /// The encoder active on this thread, or nullptr.
  static Encoder* current();

 private:
  // Most messages are a few dozen bytes: msgpack's default 8 KiB first buffer made every call
  // cost a large allocation (freed by another thread once sent).
  static constexpr std::size_t kInitialBody = 256;
  /// The thread's spare body buffer when no other encoder on the thread uses it (the body is
  /// copied into its frame, so the buffer is free again once the message is made: a buffer
  /// allocated per message showed in profiles), else `own_`.
  msgpack::sbuffer* take_body();
  std::optional<msgpack::sbuffer> own_;
  msgpack::sbuffer* body_ = take_body();
  msgpack::packer<msgpack::sbuffer> packer_{*body_};
  std::vector<Bytes> blobs_;
  std::vector<std::uint64_t> refs_;
  RefHooks* hooks_;
  Encoder* previous_;
  std::uint64_t session_ = 0;
  bool share_unshared_ = false;
};

/// What decoding a message body needs besides the msgpack tree: its blob frames and the hooks
/// that turn reference ext values into proxies. Active on the thread while it lives.
class DecodeScope {
 public:
  DecodeScope(std::span<const Bytes> blobs, RefHooks* hooks);
  /// Holds the blobs itself, until release_blobs().
  DecodeScope(std::vector<Bytes>&& blobs, RefHooks* hooks);
  ~DecodeScope();
  DecodeScope(const DecodeScope&) = delete;
  DecodeScope& operator=(const DecodeScope&) = delete;

  std::span<const Bytes> blobs() const { return blobs_; }
  RefHooks* hooks() const { return hooks_; }
  /// The values decoded so far own their bytes alone from here on (a scope that holds its
  /// blobs drops them): a server method's arguments, once decoded, so that bytes it hands on
  /// as they came (a put to a parked get) can leave without a copy. No blob can be decoded after.
  void release_blobs();
  static DecodeScope* current();

 private:
  std::vector<Bytes> owned_;
  std::span<const Bytes> blobs_;
  RefHooks* hooks_;
  DecodeScope* previous_;
};

/// A decoded value with everything that keeps it valid: the msgpack tree may point into the
/// received frames, so they travel together.
struct Payload {
  msgpack::object value;
  std::vector<Bytes> blobs;
  std::vector<std::uint64_t> refs;  // references the message carries (see docs/protocol.md)
  std::shared_ptr<void> keepalive;  // owns the frame and zone `value` points into
};

/// Name of a msgpack object's kind, as error messages show it ("int", "str", "list", ...).
std::string_view kind_name(const msgpack::object& o);

/// Human-readable name of a C++ type for argument errors; specialised for common types.
template <class T>
struct TypeName {
  static constexpr std::string_view value = "object";
};
#define ZMANAGER_TYPE_NAME(T, N)                 \
  template <>                                    \
  struct TypeName<T> {                           \
    static constexpr std::string_view value = N; \
  };
ZMANAGER_TYPE_NAME(bool, "bool")
ZMANAGER_TYPE_NAME(int, "int")
ZMANAGER_TYPE_NAME(unsigned, "int")
ZMANAGER_TYPE_NAME(long, "int")
ZMANAGER_TYPE_NAME(unsigned long, "int")
ZMANAGER_TYPE_NAME(long long, "int")
ZMANAGER_TYPE_NAME(unsigned long long, "int")
ZMANAGER_TYPE_NAME(short, "int")
ZMANAGER_TYPE_NAME(float, "float")
ZMANAGER_TYPE_NAME(double, "float")
ZMANAGER_TYPE_NAME(std::string, "str")
ZMANAGER_TYPE_NAME(Bytes, "bytes")
#undef ZMANAGER_TYPE_NAME
template <class T, class A>
struct TypeName<std::vector<T, A>> {
  static constexpr std::string_view value = "list";
};

/// The text of a description given as text, or as a function that makes it: callers on the
/// path of every call pass a function, so that the text is only made for an error.
template <class What>
std::string describe(const What& what) {
  if constexpr (std::is_invocable_v<const What&>)
    return what();
  else
    return std::string(what);
}

/// Converts a decoded value to T; a mismatch is a TypeError naming both types and `what` (text,
/// or a function making it).
template <class T, class What = std::string_view>
T convert(const msgpack::object& o, const What& what) {
  try {
    return o.as<T>();
  } catch (const msgpack::type_error&) {
    throw TypeError(describe(what) + ": expected " + std::string(TypeName<T>::value) + ", got " +
                    std::string(kind_name(o)));
  }
}

}  // namespace zmanager::wire

namespace msgpack {
MSGPACK_API_VERSION_NAMESPACE(MSGPACK_DEFAULT_API_NS) {
  namespace adaptor {

  template <>
  struct pack<zmanager::Bytes> {
    template <class Stream>
    packer<Stream>& operator()(packer<Stream>& o, const zmanager::Bytes& v) const {
      auto* enc = zmanager::wire::Encoder::current();
      if (enc && v.size() >= zmanager::wire::kBlobThreshold) {
        std::uint32_t index = enc->add_blob(v);
        char be[4] = {static_cast<char>(index >> 24), static_cast<char>(index >> 16),
                      static_cast<char>(index >> 8), static_cast<char>(index)};
        o.pack_ext(4, zmanager::wire::kExtBlob);
        o.pack_ext_body(be, 4);
        return o;
      }
      o.pack_bin(static_cast<std::uint32_t>(v.size()));
      o.pack_bin_body(reinterpret_cast<const char*>(v.data()),
                      static_cast<std::uint32_t>(v.size()));
      return o;
    }
  };

  template <>
  struct convert<zmanager::Bytes> {
    const msgpack::object& operator()(const msgpack::object& o, zmanager::Bytes& v) const;
  };

  template <>
  struct object_with_zone<zmanager::Bytes> {
    void operator()(msgpack::object::with_zone& o, const zmanager::Bytes& v) const {
      o.type = type::BIN;
      char* p = static_cast<char*>(o.zone.allocate_no_align(v.size()));
      if (v.size()) std::memcpy(p, v.data(), v.size());
      o.via.bin.ptr = p;
      o.via.bin.size = static_cast<std::uint32_t>(v.size());
    }
  };

  }  // namespace adaptor
}
}  // namespace msgpack
