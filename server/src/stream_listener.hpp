// The server end of the same-host transport (docs/protocol.md, "1.1 Same-host stream"): a Unix
// socket whose connections the server's own poll step reads, beside its ZeroMQ socket. A call
// then costs two thread wake-ups (client, server) where ZeroMQ's I/O threads add four.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "segment_pool.hpp"
#include "zmanager/wire/stream.hpp"

struct epoll_event;

namespace zmanager::server {

class StreamListener {
 public:
  /// Listens on a unix:// address; a socket file left by a server that is gone is replaced.
  /// ConnectionError when the address is in use or cannot be bound. The listening socket and
  /// every connection are watched in `epoll_fd`, the server's one set for its poll step, with
  /// keys below kFirstForeignKey (the server's own descriptors use the keys above).
  /// Large blobs to and from the connections that ask for it go through shared segments from
  /// `segments` (shared with the ZeroMQ clients on this host).
  StreamListener(const std::string& address, const wire::Limits& limits, int epoll_fd,
                 std::shared_ptr<SegmentPool> segments);
  ~StreamListener();  // closes every connection; removes the socket file
  StreamListener(const StreamListener&) = delete;
  StreamListener& operator=(const StreamListener&) = delete;

  static constexpr std::uint64_t kFirstForeignKey = std::uint64_t{1} << 62;

  const std::string& address() const { return address_; }
  /// Whether a routing id names a connection of this transport. They never collide with
  /// ZeroMQ's: those that ZeroMQ makes are 5 bytes, and a peer cannot choose one starting
  /// with a zero byte.
  static bool is_peer(std::string_view routing);

  struct Events {
    std::vector<std::pair<std::string, wire::Frames>> messages;
    std::vector<std::pair<std::string, wire::StreamInput::Refused>> refused;
    struct Closed {
      std::string routing;
      std::string why;
      bool malformed;  // it sent what is not a message
    };
    std::vector<Closed> closed;
    std::size_t accepted = 0;
  };
  /// The polling thread only, for the events of the set with this listener's keys: accepts
  /// connections, reads what arrived (about `max_messages` at most), and writes what waited
  /// for room.
  void handle(const epoll_event* events, std::size_t count, Events& out, std::size_t max_messages);

  /// Any thread: queues a message for a connection (dropped if it is gone) ...
  void queue(const std::string& routing, wire::Frames frames);
  /// ... and writes what was queued, to every connection that has some.
  void write_queued();

  /// Whether a connection has an open session: only then is it lent segments to write into.
  void set_authenticated(const std::string& routing, bool yes);

 private:
  struct Peer;
  /// A connection's side of the shared segments: what its reader meets (LEASE, RELEASE, blob
  /// frames in segments) is handled here, on the polling thread, under the listener's mu_.
  class PeerSegments final : public wire::SegmentEndpoint {
   public:
    PeerSegments(StreamListener& listener, Peer& peer) : listener_(listener), peer_(peer) {}
    void on_control(wire::StreamKind kind, std::string_view body) override;
    zmq::message_t frame_in(std::uint64_t segment, std::uint64_t offset,
                            std::uint64_t length) override;

   private:
    StreamListener& listener_;
    Peer& peer_;
  };
  struct Peer {
    int fd;
    std::string routing;
    PeerSegments segments;
    wire::StreamReader reader;      // the polling thread only
    wire::StreamWriter writer;      // under mu_
    bool waiting_for_room = false;  // under mu_: EPOLLOUT is asked for
    bool queued = false;            // under mu_: in dirty_
    // Under mu_. The connection asked for segments (LEASE), so it may be sent blobs in them.
    bool takes_segments = false;
    bool authenticated = false;
    SegmentLedger ledger;  // under mu_
    Peer(StreamListener& listener, int fd, std::string routing, const wire::Limits& limits)
        : fd(fd),
          routing(std::move(routing)),
          segments(listener, *this),
          reader(limits, &segments) {}
  };
  /// With mu_ held: queues MAP, with their descriptors, for those of `segments` the peer has
  /// not been sent yet.
  void introduce(Peer& peer, std::span<const wire::SegmentSize> segments);
  void accept_all(Events& out);
  /// With mu_ held.
  void write(Peer& peer);
  void close_peer(std::uint64_t id, Events& out, std::string why, bool malformed);

  std::string address_;
  std::string path_;  // the socket file to remove (empty when abstract)
  const wire::Limits& limits_;
  int listen_fd_ = -1;
  const int epoll_fd_;
  std::uint64_t next_id_ = 1;
  const std::shared_ptr<SegmentPool> segments_;

  std::mutex mu_;
  std::unordered_map<std::uint64_t, std::shared_ptr<Peer>> peers_;  // by the id in its routing
  std::vector<std::shared_ptr<Peer>> dirty_;                        // have queued messages
};

}  // namespace zmanager::server
