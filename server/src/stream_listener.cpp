#include "stream_listener.hpp"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "zmanager/errors.hpp"
#include "zmanager/wire/log.hpp"

namespace zmanager::server {
namespace {

constexpr std::string_view kRoutingPrefix{"\0unix", 5};

std::string routing_of(std::uint64_t id) {
  std::string r(kRoutingPrefix);
  r.append(reinterpret_cast<const char*>(&id), sizeof id);
  return r;
}

std::uint64_t id_of(std::string_view routing) {
  std::uint64_t id;
  std::memcpy(&id, routing.data() + kRoutingPrefix.size(), sizeof id);
  return id;
}

// The listening socket's epoll key: connections are keyed by their id, which starts at 1.
constexpr std::uint64_t kListenKey = 0;

std::string os_reason(int error) {
  return std::strerror(error);
}

}  // namespace

bool StreamListener::is_peer(std::string_view routing) {
  return routing.size() == kRoutingPrefix.size() + sizeof(std::uint64_t) &&
         routing.starts_with(kRoutingPrefix);
}

StreamListener::StreamListener(const std::string& address, const wire::Limits& limits, int epoll_fd,
                               std::shared_ptr<SegmentPool> segments)
    : address_(address), limits_(limits), epoll_fd_(epoll_fd), segments_(std::move(segments)) {
  const wire::UnixAddress where = wire::parse_unix_address(address);
  listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) throw ConnectionError("cannot make a Unix socket: " + os_reason(errno));
  auto fail = [&](const std::string& why) {
    ::close(listen_fd_);
    throw ConnectionError("cannot listen on '" + address + "': " + why);
  };
  if (::bind(listen_fd_, reinterpret_cast<const sockaddr*>(&where.addr), where.length) != 0) {
    int error = errno;
    if (error != EADDRINUSE || where.abstract) fail(os_reason(error));
    // A socket file is there: in use if a server answers on it, else left by one that died.
    int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool live = probe >= 0 &&
                ::connect(probe, reinterpret_cast<const sockaddr*>(&where.addr), where.length) == 0;
    if (probe >= 0) ::close(probe);
    struct stat st {};
    if (live) fail("another server is listening there");
    if (::lstat(where.path.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode))
      fail("the path exists and is not a socket");
    ::unlink(where.path.c_str());
    if (::bind(listen_fd_, reinterpret_cast<const sockaddr*>(&where.addr), where.length) != 0)
      fail(os_reason(errno));
  }
  path_ = where.path;
  if (::listen(listen_fd_, SOMAXCONN) != 0) fail(os_reason(errno));
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kListenKey;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &ev) != 0) {
    if (!path_.empty()) ::unlink(path_.c_str());
    fail("epoll: " + os_reason(errno));
  }
}

StreamListener::~StreamListener() {
  for (auto& [id, peer] : peers_) ::close(peer->fd);  // which takes it out of the set
  ::close(listen_fd_);
  if (!path_.empty()) ::unlink(path_.c_str());
}

void StreamListener::accept_all(Events& out) {
  while (true) {
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      // EAGAIN: none left. Out of descriptors (EMFILE...): the rest wait in the backlog.
      if (errno != EAGAIN && errno != EWOULDBLOCK)
        log::warn("cannot accept a connection on ", address_, ": ", os_reason(errno));
      return;
    }
    const std::uint64_t id = next_id_++;
    auto peer = std::make_shared<Peer>(*this, fd, routing_of(id), limits_);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = id;
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
      log::warn("cannot watch a connection on ", address_, ": ", os_reason(errno));
      ::close(fd);
      continue;
    }
    std::lock_guard lock(mu_);
    peers_.emplace(id, std::move(peer));
    ++out.accepted;
  }
}

void StreamListener::close_peer(std::uint64_t id, Events& out, std::string why, bool malformed) {
  std::shared_ptr<Peer> peer;
  {
    std::lock_guard lock(mu_);
    auto it = peers_.find(id);
    if (it == peers_.end()) return;
    peer = std::move(it->second);
    peers_.erase(it);
    // Closed under the lock: a sender that found the peer is done with its descriptor.
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, peer->fd, nullptr);
    ::close(peer->fd);
    peer->fd = -1;
    // Its segments go back: those it was lent to write into, and those it was reading.
    peer->ledger.give_all_back(*segments_);
  }
  out.closed.push_back({peer->routing, std::move(why), malformed});
}

void StreamListener::handle(const epoll_event* events, std::size_t count, Events& out,
                            std::size_t max_messages) {
  for (std::size_t i = 0; i < count; ++i) {
    const std::uint64_t id = events[i].data.u64;
    if (id == kListenKey) {
      accept_all(out);
      continue;
    }
    std::shared_ptr<Peer> peer;
    {
      std::lock_guard lock(mu_);
      auto it = peers_.find(id);
      if (it == peers_.end()) continue;
      peer = it->second;
      if (events[i].events & EPOLLOUT) write(*peer);
    }
    if (!(events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) continue;
    wire::StreamInput in;
    wire::StreamReader::Status status;
    try {
      status = peer->reader.read_from(peer->fd, in, max_messages);
    } catch (const std::exception& e) {
      close_peer(id, out, std::string("sent what is not a message (") + e.what() + ")", true);
      continue;
    }
    for (auto& frames : in.messages) out.messages.emplace_back(peer->routing, std::move(frames));
    for (auto& refused : in.refused) out.refused.emplace_back(peer->routing, std::move(refused));
    if (status == wire::StreamReader::Status::kClosed)
      close_peer(id, out, "closed its connection", false);
  }
}

void StreamListener::queue(const std::string& routing, wire::Frames frames) {
  std::lock_guard lock(mu_);
  auto it = peers_.find(id_of(routing));
  if (it == peers_.end()) {
    log::debug("reply to a closed local connection not sent");
    return;
  }
  Peer& peer = *it->second;
  // A large blob already in a segment is lent to a connection that takes them, in place of
  // its bytes; the frame that holds the segment waits for the connection to give it back.
  std::vector<wire::Placement> placements;
  if (peer.takes_segments) {
    std::vector<wire::SegmentSize> placed_in;
    placements = peer.ledger.lend_to_read(*segments_, frames, placed_in);
    introduce(peer, placed_in);
  }
  peer.writer.push(std::move(frames), placements);
  if (!peer.queued) {
    peer.queued = true;
    dirty_.push_back(it->second);
  }
}

void StreamListener::set_authenticated(const std::string& routing, bool yes) {
  std::lock_guard lock(mu_);
  if (auto it = peers_.find(id_of(routing)); it != peers_.end()) it->second->authenticated = yes;
}

void StreamListener::write_queued() {
  std::lock_guard lock(mu_);
  for (auto& peer : dirty_) {
    peer->queued = false;
    if (peer->fd >= 0) write(*peer);
  }
  dirty_.clear();
}

void StreamListener::introduce(Peer& peer, std::span<const wire::SegmentSize> segments) {
  for (auto& map : peer.ledger.unsent(segments)) {
    // Over the stream the descriptors travel with the MAP, whose entries say no number.
    std::vector<int> fds;
    for (auto& segment : map) fds.push_back(static_cast<int>(std::exchange(segment.fd, -1)));
    peer.writer.push_control(wire::StreamKind::kMap, wire::encode_segment_sizes(map),
                             std::move(fds));
  }
}

void StreamListener::PeerSegments::on_control(wire::StreamKind kind, std::string_view body) {
  switch (kind) {
    case wire::StreamKind::kLease: {
      const auto request = wire::decode_lease(body);
      std::lock_guard lock(listener_.mu_);
      peer_.takes_segments = true;
      std::vector<wire::SegmentSize> lent;
      if (peer_.authenticated)
        lent = peer_.ledger.lend(*listener_.segments_, request.count, request.min_size);
      listener_.introduce(peer_, lent);
      std::vector<std::uint64_t> ids;
      for (const auto& segment : lent) ids.push_back(segment.id);
      // Always answered, with none when none is free: the client asks again later.
      peer_.writer.push_control(wire::StreamKind::kLend, wire::encode_segment_ids(ids));
      if (peer_.fd >= 0) listener_.write(peer_);
      return;
    }
    case wire::StreamKind::kRelease: {
      const auto ids = wire::decode_segment_ids(body);
      std::lock_guard lock(listener_.mu_);
      peer_.ledger.release(*listener_.segments_, ids);
      return;
    }
    default:
      throw ProtocolError("a client sent a server's stream control message");
  }
}

zmq::message_t StreamListener::PeerSegments::frame_in(std::uint64_t segment, std::uint64_t offset,
                                                      std::uint64_t length) {
  std::lock_guard lock(listener_.mu_);
  return peer_.ledger.take_written(*listener_.segments_, segment, offset, length);
}

void StreamListener::write(Peer& peer) {
  const auto status = peer.writer.write_to(peer.fd);
  // Whatever the socket did not take waits for room: the poll step is told when there is.
  // (A broken connection is noticed, and closed, by the poll step's read.)
  const bool waiting = status == wire::StreamWriter::Status::kPending;
  if (status == wire::StreamWriter::Status::kBroken) peer.writer.drop(false);
  if (waiting == peer.waiting_for_room) return;
  epoll_event ev{};
  ev.events = EPOLLIN | (waiting ? EPOLLOUT : 0u);
  ev.data.u64 = id_of(peer.routing);
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, peer.fd, &ev);
  peer.waiting_for_room = waiting;
}

}  // namespace zmanager::server
