#include <algorithm>

#include "zmanager/proxy.hpp"
#include "zmanager/wire/protocol.hpp"

namespace zmanager::detail {

CallState::~CallState() {
  // A reply nobody read may still hold references the server counted for us.
  if (payload_ && !payload_->refs.empty()) {
    if (auto ch = channel_.lock())
      for (auto id : payload_->refs) ch->release(id, session_);
  }
}

bool CallState::claim() {
  int pending = kPending;
  return progress_.compare_exchange_strong(pending, kSettling, std::memory_order_acquire);
}

void CallState::publish() {
  // Sequentially consistent, as wait_here()'s count and check are: either this load sees a
  // sleeper, who is then woken under the mutex, or the sleeper's check sees kDone.
  progress_.store(kDone, std::memory_order_seq_cst);
  if (sleepers_.load(std::memory_order_seq_cst) == 0) return;
  { std::lock_guard lock(mu_); }
  cv_.notify_all();
}

void CallState::complete(wire::Payload payload, std::uint64_t session) {
  if (!claim()) return;
  payload_ = std::move(payload);
  session_ = session;
  publish();
}

void CallState::fail(std::exception_ptr error) {
  if (!claim()) return;
  error_ = std::move(error);
  publish();
}

void CallState::set_deadline(std::chrono::steady_clock::time_point deadline, CallTimeout timeout) {
  std::lock_guard lock(mu_);  // the connection may read it (past_deadline) on another thread
  deadline_ = deadline;
  timeout_ = timeout;
  has_deadline_.store(true, std::memory_order_release);
}

bool CallState::past_deadline(std::chrono::steady_clock::time_point now) const {
  if (!has_deadline_.load(std::memory_order_acquire)) return false;
  std::lock_guard lock(mu_);
  return deadline_ && now >= *deadline_;
}

void CallState::wait() {
  if (done()) return;
  if (auto channel = channel_.lock()) {
    channel->wait_for_reply(*this, std::nullopt);
    if (done()) return;
  }
  wait_here(std::nullopt);
}

bool CallState::wait_until(std::chrono::steady_clock::time_point deadline) {
  if (done()) return true;
  if (auto channel = channel_.lock()) return channel->wait_for_reply(*this, deadline);
  return wait_here(deadline);
}

bool CallState::ready() {
  if (done()) return true;
  return wait_until(std::chrono::steady_clock::now());
}

bool CallState::done() const {
  // Sequentially consistent for the waiters that count themselves before they look (here and
  // in Connection::wait_for_reply): the same instruction as an acquire load on x86 and ARMv8.
  return progress_.load(std::memory_order_seq_cst) == kDone;
}

bool CallState::wait_here(std::optional<std::chrono::steady_clock::time_point> deadline) {
  std::unique_lock lock(mu_);
  // Counted before done() is looked at (see publish()).
  sleepers_.fetch_add(1, std::memory_order_seq_cst);
  bool settled = true;
  if (!deadline)
    cv_.wait(lock, [&] { return done(); });
  else
    settled = cv_.wait_until(lock, *deadline, [&] { return done(); });
  sleepers_.fetch_sub(1, std::memory_order_relaxed);
  return settled;
}

wire::Payload CallState::take() {
  if (!deadline_) {
    wait();
  } else if (!wait_until(*deadline_ + kDeadlineGrace)) {
    throw TimeoutError("no answer from the server within the call's " +
                       std::to_string(timeout_ ? timeout_->count() : 0) + " ms deadline (and " +
                       std::to_string(kDeadlineGrace.count()) +
                       " ms more): the call may still run there");
  }
  // Done: the result is this thread's to read (a Future takes it once, on one thread).
  if (error_) {
    // Taken out, so that the caller's thread holds the last reference to the exception and
    // destroys it, not whichever thread drops this state last.
    auto error = std::move(error_);
    error_ = nullptr;
    std::rethrow_exception(std::move(error));
  }
  if (!payload_) throw Error("the result of this call was already taken");
  wire::Payload p = std::move(*payload_);
  payload_.reset();
  return p;
}

void begin_call(wire::Encoder& enc, std::uint64_t request_id, std::uint64_t object,
                std::string_view method, bool with_timeout) {
  auto& pk = enc.packer();
  pk.pack_array(with_timeout ? 7 : 6);
  pk.pack(static_cast<std::uint8_t>(wire::Op::kCall));
  pk.pack(request_id);
  pk.pack(object);
  pk.pack(method);
}

void end_call(wire::Encoder& enc, CallTimeout timeout) {
  enc.packer().pack(enc.refs());
  if (timeout)
    enc.packer().pack(static_cast<std::uint64_t>(std::max<std::int64_t>(0, timeout->count())));
}

ImportTracker::ImportTracker(std::shared_ptr<Channel> channel, wire::Payload& payload,
                             std::uint64_t session) {
  hooks_.channel = std::move(channel);
  hooks_.session = session;
  hooks_.pending = std::move(payload.refs);
  payload.refs.clear();
}

ImportTracker::~ImportTracker() {
  if (!hooks_.channel) return;
  for (auto id : hooks_.pending) hooks_.channel->release(id, hooks_.session);
}

std::shared_ptr<ObjectRef> ImportTracker::Hooks::on_import(std::uint64_t id,
                                                           std::string_view type) {
  auto it = std::find(pending.begin(), pending.end(), id);
  if (it == pending.end())
    throw ProtocolError("reply refers to object " + std::to_string(id) + " it does not list");
  pending.erase(it);
  return std::make_shared<ObjectRef>(channel, id, std::string(type), session);
}

std::uint64_t ObjectRef::id_for(wire::Encoder& enc) const {
  Binding b = binding();
  if (b.session == 0) return b.id;  // the server object, or a reference inside the server
  if (b.session < channel_->session() || (enc.session() && enc.session() != b.session))
    throw StaleProxyError("the proxy to " + describe() + channel_->stale_reason());
  enc.set_session(b.session);
  return b.id;
}

std::string ObjectRef::describe() const {
  std::string what = type_ + " object " + std::to_string(id());
  if (!shared_name_.empty()) what += " (shared as '" + shared_name_ + "')";
  return what;
}

void pack_ref(msgpack::packer<msgpack::sbuffer>& o, const ObjectRef& ref) {
  auto* enc = wire::Encoder::current();
  if (!enc) throw TypeError("a proxy can only be sent as a call argument or result");
  pack_ref(o, ref.id_for(*enc), ref.type());
}

void pack_ref(msgpack::packer<msgpack::sbuffer>& o, std::uint64_t id, std::string_view type) {
  auto* enc = wire::Encoder::current();
  if (!enc) throw TypeError("a proxy can only be sent as a call argument or result");
  msgpack::sbuffer body;
  msgpack::packer<msgpack::sbuffer> inner(body);
  inner.pack_array(2);
  inner.pack(id);
  inner.pack(type);
  o.pack_ext(body.size(), wire::kExtRef);
  o.pack_ext_body(body.data(), static_cast<std::uint32_t>(body.size()));
  enc->add_ref(id);
}

std::shared_ptr<ObjectRef> unpack_ref(const msgpack::object& o) {
  if (o.type != msgpack::type::EXT || o.via.ext.type() != wire::kExtRef)
    throw msgpack::type_error();
  auto* scope = wire::DecodeScope::current();
  if (!scope || !scope->hooks()) throw ProtocolError("object reference outside a call");
  // The payload is a msgpack document of its own: parsed under the same bounds as a message
  // body (a few bytes must not declare gigabytes), and any flaw is the sender's ProtocolError.
  const std::size_t size = o.via.ext.size;
  msgpack::object_handle h;
  try {
    std::size_t offset = 0;
    h = msgpack::unpack(o.via.ext.data(), size, offset, nullptr, nullptr,
                        wire::unpack_limits(size, wire::Limits{}));
    if (offset != size) throw ProtocolError("trailing bytes");
  } catch (const std::exception& e) {
    throw ProtocolError(std::string("malformed object reference: ") + e.what());
  }
  const msgpack::object& v = h.get();
  if (v.type != msgpack::type::ARRAY || v.via.array.size != 2)
    throw ProtocolError("malformed object reference");
  std::uint64_t id = wire::as_u64(v.via.array.ptr[0], "object reference id");
  std::string type = wire::as_string(v.via.array.ptr[1], "object reference type");
  return scope->hooks()->on_import(id, type);
}

}  // namespace zmanager::detail
