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
    for (auto& [segment_id, segment] : peer->lent_to_write)
      segments_->give_back(std::move(segment));
    peer->lent_to_write.clear();
    peer->lent_to_read.clear();
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
  std::vector<wire::StreamWriter::Placement> placements;
  if (peer.takes_segments) {
    for (std::size_t i = 1; i < frames.size(); ++i) {
      if (frames[i].size() < wire::kSegmentThreshold) continue;
      const auto place = segments_->find(frames[i].data(), frames[i].size());
      if (!place) continue;
      const wire::SegmentSize known{place->segment, place->segment_size};
      introduce(peer, {&known, 1}, {&place->fd, 1});
      placements.push_back({i, place->segment, place->offset, frames[i].size()});
      peer.lent_to_read.emplace(place->segment, std::move(frames[i]));
    }
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

void StreamListener::introduce(Peer& peer, std::span<const wire::SegmentSize> segments,
                               std::span<const int> fds) {
  std::vector<wire::SegmentSize> news;
  std::vector<int> news_fds;
  for (std::size_t i = 0; i < segments.size(); ++i) {
    if (!peer.mapped.insert(segments[i].id).second) continue;
    news.push_back(segments[i]);
    news_fds.push_back(fds[i]);
  }
  if (!news.empty())
    peer.writer.push_control(wire::StreamKind::kMap, wire::encode_segment_sizes(news),
                             std::move(news_fds));
}

void StreamListener::PeerSegments::on_control(wire::StreamKind kind, std::string_view body) {
  switch (kind) {
    case wire::StreamKind::kLease: {
      const auto request = wire::decode_lease(body);
      std::lock_guard lock(listener_.mu_);
      peer_.takes_segments = true;
      const std::size_t room =
          peer_.authenticated ? SegmentPool::kMostLentToOneClient - peer_.lent_to_write.size() : 0;
      auto lent = listener_.segments_->take(
          static_cast<std::size_t>(std::min<std::uint64_t>(request.count, room)),
          static_cast<std::size_t>(request.min_size));
      std::vector<wire::SegmentSize> sizes;
      std::vector<int> fds;
      std::vector<std::uint64_t> ids;
      for (auto& segment : lent) {
        sizes.push_back({segment->id, segment->memory.size()});
        fds.push_back(segment->memory.fd());
        ids.push_back(segment->id);
        peer_.lent_to_write.emplace(segment->id, std::move(segment));
      }
      listener_.introduce(peer_, sizes, fds);
      // Always answered, with none when none is free: the client asks again later.
      peer_.writer.push_control(wire::StreamKind::kLend, wire::encode_segment_ids(ids));
      if (peer_.fd >= 0) listener_.write(peer_);
      return;
    }
    case wire::StreamKind::kRelease: {
      const auto ids = wire::decode_segment_ids(body);
      std::lock_guard lock(listener_.mu_);
      for (std::uint64_t id : ids) {
        if (auto it = peer_.lent_to_read.find(id); it != peer_.lent_to_read.end()) {
          peer_.lent_to_read.erase(it);  // its frame gives the segment back
        } else if (auto lent = peer_.lent_to_write.find(id); lent != peer_.lent_to_write.end()) {
          listener_.segments_->give_back(std::move(lent->second));
          peer_.lent_to_write.erase(lent);
        }
        // Else not this connection's: nothing to give back.
      }
      return;
    }
    default:
      throw ProtocolError("a client sent a server's stream control message");
  }
}

zmq::message_t StreamListener::PeerSegments::frame_in(std::uint64_t segment, std::uint64_t offset,
                                                      std::uint64_t length) {
  std::lock_guard lock(listener_.mu_);
  auto it = peer_.lent_to_write.find(segment);
  if (it == peer_.lent_to_write.end())
    throw ValueError("a blob frame in segment " + std::to_string(segment) +
                     ", which is not lent to this connection to write into");
  const std::uint64_t size = it->second->memory.size();
  if (offset > size || length > size - offset)
    throw ValueError("a blob frame of " + std::to_string(length) + " bytes at offset " +
                     std::to_string(offset) + " of a segment of " + std::to_string(size));
  // The segment is the server's again, held by the frame.
  auto held = std::move(it->second);
  peer_.lent_to_write.erase(it);
  return listener_.segments_->frame_of(std::move(held), offset, length);
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
