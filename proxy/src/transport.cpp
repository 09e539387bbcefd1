#include "transport.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <unordered_map>

#include "zmanager/errors.hpp"
#include "zmanager/wire/log.hpp"
#include "zmanager/wire/segment.hpp"
#include "zmanager/wire/stream.hpp"

namespace zmanager::detail {
namespace {

using Clock = std::chrono::steady_clock;

// What a closing client still sends (the goodbye above all) may take this long to leave.
constexpr std::chrono::milliseconds kLinger{200};

// The client's side of the shared segments (docs/protocol.md, "1.2"): the segments the server
// mapped into this process for one connection, those lent to it to write blobs into, and those
// it read blobs from and owes back. A blob read from a segment is copied out at once and the
// segment given back with the next write: what a user keeps never aliases memory that the
// server lends to another process next.
//
// Over the stream a MAP's descriptors come with it (SCM_RIGHTS); over ZeroMQ (protocol version
// 6) the client opens them in the server process, whose pid came with the probe it proved it
// could read. What the client sends goes through `Send`, a callable taking a kind and a body.
class ClientSegments final : public wire::SegmentEndpoint {
 public:
  ClientSegments() = default;
  explicit ClientSegments(std::uint64_t server_pid) : server_pid_(server_pid) {}
  ~ClientSegments() override {
    for (int fd : descriptors_) ::close(fd);
  }
  bool takes_descriptors() const override { return true; }
  void on_descriptors(std::span<const int> fds) override {
    descriptors_.insert(descriptors_.end(), fds.begin(), fds.end());
  }
  void on_control(wire::StreamKind kind, std::string_view body) override {
    switch (kind) {
      case wire::StreamKind::kMap:
        for (const auto& segment : wire::decode_segment_sizes(body)) {
          if (server_pid_) {
            if (segment.fd < 0) throw ProtocolError("MAP over ZeroMQ without a descriptor number");
            check_new(segment);
            mapped_.emplace(segment.id, wire::SegmentMapping::open_in(
                                            *server_pid_, static_cast<std::uint64_t>(segment.fd),
                                            segment.size));
            continue;
          }
          if (descriptors_.empty()) throw ProtocolError("MAP without its descriptors");
          const int fd = descriptors_.front();
          descriptors_.pop_front();
          try {
            check_new(segment);
          } catch (...) {
            ::close(fd);
            throw;
          }
          mapped_.emplace(segment.id, wire::SegmentMapping::adopt(fd, segment.size));
        }
        return;
      case wire::StreamKind::kLend:
        for (std::uint64_t id : wire::decode_segment_ids(body)) {
          if (!mapped_.count(id)) throw ProtocolError("LEND of a segment never mapped");
          lent_.push_back(id);
        }
        lease_asked_ = false;
        return;
      default:
        throw ProtocolError("a server sent a client's stream control message");
    }
  }
  zmq::message_t frame_in(std::uint64_t segment, std::uint64_t offset,
                          std::uint64_t length) override {
    auto it = mapped_.find(segment);
    if (it == mapped_.end() || offset > it->second.size() || length > it->second.size() - offset)
      throw ProtocolError("a blob frame outside the segments this connection was sent");
    zmq::message_t copy(it->second.data() + offset, static_cast<std::size_t>(length));
    owed_.push_back(segment);
    return copy;
  }

  /// Moves a large blob frame into a segment lent to this connection, if one fits; else asks
  /// for some (once at a time) and the frame goes through the socket this time.
  template <class Send>
  std::optional<wire::Placement> place(std::size_t index, const zmq::message_t& frame,
                                       Send&& send) {
    auto best = lent_.end();
    for (auto it = lent_.begin(); it != lent_.end(); ++it) {
      const std::size_t size = mapped_.at(*it).size();
      if (size >= frame.size() && (best == lent_.end() || size < mapped_.at(*best).size()))
        best = it;
    }
    std::optional<wire::Placement> placed;
    if (best != lent_.end()) {
      const std::uint64_t id = *best;
      lent_.erase(best);
      std::memcpy(mapped_.at(id).data(), frame.data(), frame.size());
      placed = wire::Placement{index, id, 0, frame.size()};
    } else {
      // None is large enough: those lent are given back, so that the server's bound on what
      // one connection holds leaves room for larger ones.
      owed_.insert(owed_.end(), lent_.begin(), lent_.end());
      lent_.clear();
      give_back(send);  // before the LEASE below
    }
    // Asked for ahead of need, so that a stream of blobs does not wait on the answer.
    if (!lease_asked_ && lent_.size() < kLeaseAhead / 2) {
      send(wire::StreamKind::kLease, wire::encode_lease({kLeaseAhead, frame.size()}));
      lease_asked_ = true;
    }
    return placed;
  }
  /// Places each large blob frame of a message in a segment where one fits (place()), then
  /// gives back the segments read from; returns the frames' places.
  template <class Send>
  std::vector<wire::Placement> place_all(const wire::Frames& frames, Send&& send) {
    std::vector<wire::Placement> placements;
    for (std::size_t i = 1; i < frames.size(); ++i) {
      if (frames[i].size() < wire::kSegmentThreshold) continue;
      if (auto placed = place(i, frames[i], send)) placements.push_back(*placed);
    }
    give_back(send);
    return placements;
  }
  /// Says the client takes blobs in segments (a LEASE of none).
  template <class Send>
  void open(Send&& send) {
    send(wire::StreamKind::kLease, wire::encode_lease({0, 0}));
  }
  /// Gives back the segments read from.
  template <class Send>
  void give_back(Send&& send) {
    // One read can take more blobs in segments than one RELEASE may name.
    for (const auto& body : wire::encode_segment_id_lists(owed_))
      send(wire::StreamKind::kRelease, body);
    owed_.clear();
  }

 private:
  void check_new(const wire::SegmentSize& segment) const {
    if (mapped_.count(segment.id) || segment.size > limits_.max_message_bytes)
      throw ProtocolError("MAP of segment " + std::to_string(segment.id) +
                          " again, or of more bytes than a message");
  }

  static constexpr std::uint64_t kLeaseAhead = 4;
  const wire::Limits limits_{};
  const std::optional<std::uint64_t> server_pid_;  // over ZeroMQ
  std::deque<int> descriptors_;                    // received, not yet claimed by a MAP
  std::unordered_map<std::uint64_t, wire::SegmentMapping> mapped_;
  std::vector<std::uint64_t> lent_;  // to write into
  std::vector<std::uint64_t> owed_;  // read from, to give back
  bool lease_asked_ = false;
};

// The ZeroMQ transport's client end. On the server's host (protocol version 6) it proves it can
// map the server's segments (docs/protocol.md, 1.3) and then moves large blobs through them
// as the same-host stream does, with the transport's own messages as single frames.
class ZmqTransport final : public Transport {
 public:
  ZmqTransport(const std::string& address, zmq::context_t& context)
      : socket_(context, zmq::socket_type::dealer) {
    socket_.set(zmq::sockopt::linger, static_cast<int>(kLinger.count()));
    socket_.set(zmq::sockopt::sndhwm, 0);  // flow is bounded by the calls in flight, not by drops
    socket_.set(zmq::sockopt::rcvhwm, 0);
    // Not `immediate`: requests queue on the pipe while a connection is (re)established
    // instead of blocking the sender; a server that never answers is caught by the session ttl.
    try {
      socket_.connect(address);
    } catch (const zmq::error_t& e) {
      throw ConnectionError("cannot connect to '" + address + "': " + e.what());
    }
    socket_fd_ = socket_.get(zmq::sockopt::fd);
  }
  ~ZmqTransport() override {
    // What the socket still queues is for a session that is being left behind.
    if (socket_) socket_.set(zmq::sockopt::linger, 0);
  }

  void send(wire::Frames& frames, bool keep) override {
    std::vector<wire::Placement> placements;
    if (segments_) placements = segments_->place_all(frames, control());
    if (placements.empty() && !keep) return wire::send_frames(socket_, frames);
    if (!placements.empty()) {
      auto head =
          wire::transport_frame(wire::StreamKind::kMessage, wire::encode_placements(placements));
      socket_.send(head, zmq::send_flags::sndmore);
    }
    // The placed frames go empty; a kept message keeps its own bytes, to be sent again.
    std::size_t next_placed = 0;
    for (std::size_t i = 0; i < frames.size(); ++i) {
      zmq::message_t part;
      if (next_placed < placements.size() && placements[next_placed].frame == i)
        ++next_placed;
      else if (keep)
        part.copy(frames[i]);
      else
        part = std::move(frames[i]);
      socket_.send(part, i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
  }
  std::optional<wire::Frames> receive() override {
    if (auto frames = std::exchange(arrived_, std::nullopt))
      if (passes_up(*frames)) return frames;
    while (auto frames = wire::recv_frames(socket_))
      if (passes_up(*frames)) return frames;
    return std::nullopt;
  }
  bool wait(std::chrono::milliseconds timeout, int wake_fd) override {
    // ZMQ_FD signals an edge, re-armed by reading ZMQ_EVENTS: read it first, so that a message
    // already waiting is not slept on, then one poll(2) on both descriptors. zmq_poll made two
    // poll calls and read three socket options per wait, a seventh of a synchronous call's
    // instructions on the client.
    if (socket_.get(zmq::sockopt::events) & ZMQ_POLLIN) return false;
    pollfd fds[] = {{socket_fd_, POLLIN, 0}, {wake_fd, POLLIN, 0}};
    const int n = ::poll(fds, wake_fd >= 0 ? 2 : 1,
                         static_cast<int>(std::max<std::int64_t>(0, timeout.count())));
    return n > 0 && wake_fd >= 0 && (fds[1].revents & POLLIN);
  }
  bool wait_alone(std::chrono::milliseconds timeout) override {
    // A blocking receive sleeps on ZeroMQ's own mailbox and reads the message when it wakes,
    // as a raw ZeroMQ client does. wait() reads ZMQ_EVENTS first and polls apart from libzmq,
    // which looks at its mailbox again before it reads: per synchronous call, with 8 client
    // processes on 2 vCPUs, 4.9 poll(2) and 6.0 getpid(2) against 2.9 and 5.0 this way, and
    // 0.78x the raw ZeroMQ floor's calls/s against 0.88x (medians of 9 alternating rounds).
    if (arrived_) return true;
    const int ms = static_cast<int>(std::max<std::int64_t>(0, timeout.count()));
    if (ms != receive_timeout_ms_) {
      socket_.set(zmq::sockopt::rcvtimeo, ms);  // a socket option: no system call
      receive_timeout_ms_ = ms;
    }
    try {
      arrived_ = wire::recv_frames(socket_, /*wait=*/true);
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) throw;  // a signal ends the wait, as it ends wait()'s poll
    }
    return true;
  }
  std::optional<std::string> take_break() override { return std::exchange(break_, std::nullopt); }
  void close_and_flush() override {
    socket_.set(zmq::sockopt::linger, static_cast<int>(kLinger.count()));
    socket_.close();  // the context's close then waits for the queue to leave, up to the linger
  }
  void use_segments(std::uint64_t server_version) override {
    // A new session: the server forgot what the last one was lent and sent, so the client
    // does too, and asks again (the answer is a probe to read, first).
    segments_.reset();
    if (server_version < 6) return;
    control()(wire::StreamKind::kLease, wire::encode_lease({0, 0}));
  }

 private:
  /// Sends one of the transport's own messages.
  struct Control {
    zmq::socket_t* socket;
    void operator()(wire::StreamKind kind, std::string_view body) const {
      auto frame = wire::transport_frame(kind, body);
      socket->send(frame, zmq::send_flags::none);
    }
  };
  Control control() { return {&socket_}; }

  /// Whether a message read from the socket goes up to the Connection: true unless it was the
  /// transport's own (see take_transport()).
  bool passes_up(wire::Frames& frames) {
    return frames.empty() || !wire::is_transport_frame(frames.front()) || take_transport(frames);
  }

  /// A message whose first frame is the transport's: true when it is a message to pass up
  /// (its blob frames placed in segments, now copied out), false when it was the transport's
  /// own. What the server sends wrong is dropped and ends the session, as a malformed stream
  /// closes a unix:// connection: the Connection opens a new one (without segments until the
  /// server offers them again), and a call whose reply was dropped is reported to its caller.
  bool take_transport(wire::Frames& frames) {
    try {
      const wire::TransportFrame head = wire::read_transport_frame(frames.front());
      if (head.kind == wire::StreamKind::kMessage) {
        if (!segments_) throw ProtocolError("a blob in a segment, before any was mapped");
        const auto places = wire::decode_placements(head.body, frames.size() - 1);
        frames.erase(frames.begin());
        for (const auto& p : places)
          frames[p.frame] = segments_->frame_in(p.segment, p.offset, p.length);
        segments_->give_back(control());
        return true;
      }
      if (frames.size() != 1) throw ProtocolError("a transport message of more than one frame");
      if (head.kind == wire::StreamKind::kOffer) {
        prove(wire::decode_offer(head.body));
        return false;
      }
      if (head.kind == wire::StreamKind::kLend && !segments_) return false;  // not proved yet
      if (!segments_) throw ProtocolError("a MAP before the probe was read");
      segments_->on_control(head.kind, head.body);
      return false;
    } catch (const std::exception& e) {
      segments_.reset();
      if (!break_)
        break_ = std::string("the server sent a malformed transport message (") + e.what() + ")";
      return false;
    }
  }

  /// Reads the token in the server's probe segment, if this process can open it (the same
  /// host, pid namespace and user), and sends it back; then segments are used.
  void prove(const wire::Offer& offer) {
    if (offer.size != wire::kSmallestSegment) throw ProtocolError("a probe of an unexpected size");
    std::optional<wire::SegmentMapping> probe;
    try {
      probe.emplace(wire::SegmentMapping::open_in(offer.pid, offer.fd, offer.size));
    } catch (const std::exception& e) {
      log::debug("blobs go through the socket: the server's segments cannot be mapped (", e.what(),
                 ")");
      return;
    }
    segments_.emplace(offer.pid);
    control()(wire::StreamKind::kProof,
              wire::encode_proof(std::span(probe->data(), wire::kProbeTokenBytes)));
    segments_->open(control());  // "takes blobs in segments", now that it may be sent some
  }

  zmq::socket_t socket_;
  int socket_fd_ = -1;                      // ZMQ_FD, the same for the socket's life
  std::optional<ClientSegments> segments_;  // the server's probe was read (version 6)
  std::optional<std::string> break_;
  std::optional<wire::Frames> arrived_;  // read by wait_alone(), for receive()
  int receive_timeout_ms_ = -1;          // ZMQ_RCVTIMEO as last set (-1: ZeroMQ's default)
};

// The same-host transport's client end. Like a DEALER socket it connects again on its own
// when the connection cannot be made yet or breaks, keeping the messages not yet begun; unlike
// one, it says when the connection broke, so that the Connection above reopens its session at
// once instead of after the ttl.
class StreamTransport final : public Transport {
 public:
  explicit StreamTransport(const std::string& address)
      : address_(address), where_(wire::parse_unix_address(address)) {
    try_connect();
  }
  ~StreamTransport() override {
    if (fd_ >= 0) ::close(fd_);
  }

  void send(wire::Frames& frames, bool keep) override {
    std::vector<wire::Placement> placements;
    if (segments_ && fd_ >= 0) placements = segments_->place_all(frames, stream_control());
    if (keep) {
      wire::Frames copies(frames.size());
      for (std::size_t i = 0; i < frames.size(); ++i) copies[i].copy(frames[i]);
      writer_.push(std::move(copies), placements);
    } else {
      writer_.push(std::move(frames), placements);
    }
    if (fd_ < 0 && !try_connect()) return;  // sent once connected
    write_all();
  }

  std::optional<wire::Frames> receive() override {
    if (fd_ < 0) try_connect();
    if (received_.empty() && fd_ >= 0 && may_read_) read();
    if (received_.empty()) return std::nullopt;
    auto frames = std::move(received_.front());
    received_.pop_front();
    return frames;
  }

  bool wait(std::chrono::milliseconds timeout, int wake_fd) override {
    if (fd_ < 0 && !try_connect()) {
      // Not connected yet: the server may be starting; try again soon.
      timeout = std::min(timeout, std::chrono::milliseconds(10));
    }
    if (!received_.empty()) timeout = std::chrono::milliseconds(0);
    pollfd fds[] = {{fd_, static_cast<short>(POLLIN | (writer_.empty() ? 0 : POLLOUT)), 0},
                    {wake_fd, POLLIN, 0}};
    int n = ::poll(fds, 2, static_cast<int>(std::max<std::int64_t>(0, timeout.count())));
    if (n <= 0) return false;
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) may_read_ = true;
    if ((fds[0].revents & POLLOUT) && fd_ >= 0) flush_once();
    return (fds[1].revents & POLLIN) != 0;
  }

  std::optional<std::string> take_break() override { return std::exchange(break_, std::nullopt); }
  bool worth_polling() const override { return true; }

  void use_segments(std::uint64_t server_version) override {
    if (fd_ < 0 || server_version < 5) return;
    segments_.emplace();
    reader_->use_segments(&*segments_);
    segments_->open(stream_control());
    flush_once();
  }

  void close_and_flush() override {
    const auto until = Clock::now() + kLinger;
    while (fd_ >= 0 && !writer_.empty() && Clock::now() < until) {
      if (flush_once()) break;
      pollfd p{fd_, POLLOUT, 0};
      ::poll(&p, 1, 10);
    }
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  bool try_connect() {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&where_.addr), where_.length) != 0) {
      // No server there yet (ENOENT, ECONNREFUSED) or its backlog is full (EAGAIN): retried.
      ::close(fd);
      return false;
    }
    fd_ = fd;
    reader_.emplace(limits_);
    may_read_ = true;
    if (!writer_.empty()) write_all();
    return fd_ >= 0;
  }

  /// One write of what is queued; true when nothing is left. A broken connection is closed.
  bool flush_once() {
    switch (writer_.write_to(fd_)) {
      case wire::StreamWriter::Status::kDone:
        return true;
      case wire::StreamWriter::Status::kPending:
        return false;
      case wire::StreamWriter::Status::kBroken:
        broke("the server closed the connection");
        return true;
    }
    return true;
  }

  // A message is handed to the socket whole before send() returns, waiting for room if it must
  // (a large one): the server reads without ever waiting for this client, so room comes, and no
  // thread of this client is left owing the rest of a message. A server that takes nothing for
  // a long time (stopped) breaks the connection.
  void write_all() {
    constexpr auto kMostStalled = std::chrono::seconds(30);
    auto stalled_since = Clock::now();
    while (fd_ >= 0 && !flush_once()) {
      pollfd p{fd_, POLLOUT, 0};
      if (::poll(&p, 1, 100) > 0) {
        stalled_since = Clock::now();
      } else if (Clock::now() - stalled_since > kMostStalled) {
        broke("the server read nothing for 30 s");
      }
    }
  }

  void read() {
    wire::StreamInput in;
    wire::StreamReader::Status status;
    try {
      status = reader_->read_from(fd_, in, 1024);
    } catch (const std::exception& e) {
      broke(std::string("the server sent what is not a message (") + e.what() + ")");
      return;
    }
    // A short read emptied the socket: the next read waits for the poll to say there is more.
    may_read_ = in.count() >= 1024;
    if (segments_ && fd_ >= 0) {
      segments_->give_back(stream_control());
      if (!writer_.empty()) flush_once();
    }
    for (auto& frames : in.messages) received_.push_back(std::move(frames));
    for (const auto& refused : in.refused)
      log::warn("dropped a message from ", address_, " over a limit: ", refused.why);
    if (status == wire::StreamReader::Status::kClosed) broke("the server closed the connection");
  }

  /// What ClientSegments sends goes into the writer, ahead of what comes next.
  struct Control {
    wire::StreamWriter* writer;
    void operator()(wire::StreamKind kind, std::string_view body) const {
      writer->push_control(kind, body);
    }
  };
  Control stream_control() { return {&writer_}; }

  void broke(std::string why) {
    ::close(fd_);
    fd_ = -1;
    // The segments were this connection's; a new one starts without (use_segments()).
    if (reader_) reader_->use_segments(nullptr);
    segments_.reset();
    writer_.drop(/*keep_whole=*/true);
    if (!break_) break_ = std::move(why);
  }

  const std::string address_;
  const wire::UnixAddress where_;
  const wire::Limits limits_{};
  int fd_ = -1;
  // Declared before the reader, which points to them.
  std::optional<ClientSegments> segments_;    // the server takes them (use_segments())
  std::optional<wire::StreamReader> reader_;  // new for each connection
  wire::StreamWriter writer_;
  std::deque<wire::Frames> received_;  // read, not yet taken by receive()
  bool may_read_ = false;              // the socket may have bytes to read
  std::optional<std::string> break_;
};

}  // namespace

std::unique_ptr<Transport> Transport::open(const std::string& address, zmq::context_t& context) {
  if (wire::is_unix_address(address)) return std::make_unique<StreamTransport>(address);
  return std::make_unique<ZmqTransport>(address, context);
}

}  // namespace zmanager::detail
