#include "zmanager/wire/codec.hpp"

namespace zmanager::wire {
namespace {
thread_local Encoder* active_encoder = nullptr;
thread_local DecodeScope* active_decode = nullptr;

// A spare that grew past this is freed when its encoder ends, so that one large message does
// not hold its memory for the thread's lifetime; the next message starts a small one, as after
// a large body's frame took the buffer over (to_frames).
constexpr std::size_t kLargestSpareBody = 64 * 1024;
// The flags are plain values, readable even while the thread's objects are being destroyed: an
// encoder made then (a goodbye sent by an exit handler) must not use the destroyed spare.
thread_local bool spare_body_in_use = false;
thread_local bool spare_body_gone = false;
struct SpareBody {
  msgpack::sbuffer buffer{0};
  ~SpareBody() { spare_body_gone = true; }
};
thread_local SpareBody spare_body;
}  // namespace

msgpack::sbuffer* Encoder::take_body() {
  if (spare_body_in_use || spare_body_gone) return &own_.emplace(kInitialBody);
  spare_body_in_use = true;
  auto& body = spare_body.buffer;
  if (!body.data()) body = msgpack::sbuffer(kInitialBody);  // new, or given back last time
  body.clear();
  return &body;
}

Encoder::Encoder(RefHooks* hooks) : hooks_(hooks), previous_(active_encoder) {
  active_encoder = this;
}
Encoder::~Encoder() {
  active_encoder = previous_;
  if (own_) return;
  if (body_->data() && body_->size() > kLargestSpareBody) *body_ = msgpack::sbuffer(0);
  spare_body_in_use = false;
}
Encoder* Encoder::current() {
  return active_encoder;
}

std::uint32_t Encoder::add_blob(const Bytes& b) {
  if (share_unshared_ && b.unshared())
    blobs_.push_back(b.share());
  else
    blobs_.push_back(b);  // the one copy: user memory into the frame that is sent
  return static_cast<std::uint32_t>(blobs_.size());  // frame index; frame 0 is the body
}

void Encoder::add_ref(std::uint64_t id) {
  refs_.push_back(id);
  if (hooks_) hooks_->on_export(id);
}

DecodeScope::DecodeScope(std::span<const Bytes> blobs, RefHooks* hooks)
    : blobs_(blobs), hooks_(hooks), previous_(active_decode) {
  active_decode = this;
}
DecodeScope::DecodeScope(std::vector<Bytes>&& blobs, RefHooks* hooks)
    : owned_(std::move(blobs)), blobs_(owned_), hooks_(hooks), previous_(active_decode) {
  active_decode = this;
}
void DecodeScope::release_blobs() {
  if (owned_.empty()) return;
  owned_.clear();
  blobs_ = {};
}
DecodeScope::~DecodeScope() {
  active_decode = previous_;
}
DecodeScope* DecodeScope::current() {
  return active_decode;
}

std::string_view kind_name(const msgpack::object& o) {
  switch (o.type) {
    case msgpack::type::NIL:
      return "None";
    case msgpack::type::BOOLEAN:
      return "bool";
    case msgpack::type::POSITIVE_INTEGER:
    case msgpack::type::NEGATIVE_INTEGER:
      return "int";
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64:
      return "float";
    case msgpack::type::STR:
      return "str";
    case msgpack::type::BIN:
      return "bytes";
    case msgpack::type::ARRAY:
      return "list";
    case msgpack::type::MAP:
      return "dict";
    case msgpack::type::EXT:
      switch (o.via.ext.type()) {
        case kExtBlob:
          return "bytes";
        case kExtRef:
          return "proxy";
        case kExtOpaque:
          return "opaque";
        default:
          return "ext";
      }
  }
  return "unknown";
}

}  // namespace zmanager::wire

namespace msgpack {
MSGPACK_API_VERSION_NAMESPACE(MSGPACK_DEFAULT_API_NS) {
  namespace adaptor {

  const msgpack::object& convert<zmanager::Bytes>::operator()(const msgpack::object& o,
                                                              zmanager::Bytes& v) const {
    if (o.type == type::BIN) {
      v = zmanager::Bytes(o.via.bin.ptr, o.via.bin.size);
      return o;
    }
    if (o.type == type::STR) {  // Python clients may send str where bytes are wanted
      v = zmanager::Bytes(o.via.str.ptr, o.via.str.size);
      return o;
    }
    if (o.type == type::EXT && o.via.ext.type() == zmanager::wire::kExtBlob &&
        o.via.ext.size == 4) {
      auto* scope = zmanager::wire::DecodeScope::current();
      const auto* p = reinterpret_cast<const unsigned char*>(o.via.ext.data());
      std::uint32_t index = (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) |
                            (std::uint32_t{p[2]} << 8) | std::uint32_t{p[3]};
      if (!scope || index == 0 || index > scope->blobs().size())
        throw zmanager::ProtocolError("bytes value refers to a missing frame " +
                                      std::to_string(index));
      v = scope->blobs()[index - 1].share();  // no copy: the frame becomes the buffer
      return o;
    }
    throw msgpack::type_error();
  }

  }  // namespace adaptor
}
}  // namespace msgpack

namespace zmanager::wire {
std::pair<std::uint64_t, std::string> RefHooks::export_object(std::shared_ptr<void>,
                                                              const detail::DispatchTable&) {
  throw TypeError("only a server can return new shared objects");
}
}  // namespace zmanager::wire
