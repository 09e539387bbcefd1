#include "zmanager/wire/stream.hpp"

#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>

#include "zmanager/errors.hpp"

namespace zmanager::wire {

static_assert(std::endian::native == std::endian::little,
              "the stream header is written in the host's byte order, little-endian here");

namespace {

constexpr std::size_t kHeaderBytes = 16;
constexpr std::size_t kLengthBytes = 8;

std::uint64_t load_u64(const void* p) {
  std::uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
std::uint32_t load_u32(const void* p) {
  std::uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

}  // namespace

bool is_unix_address(std::string_view address) {
  return address.starts_with(kUnixScheme);
}

UnixAddress parse_unix_address(std::string_view address) {
  if (!is_unix_address(address))
    throw ValueError("'" + std::string(address) + "' is not a unix:// address");
  std::string_view rest = address.substr(kUnixScheme.size());
  UnixAddress out;
  out.addr.sun_family = AF_UNIX;
  if (rest.starts_with('@')) {  // abstract: sun_path starts with a NUL byte, and is not a file
    out.abstract = true;
    rest.remove_prefix(1);
    if (rest.empty() || rest.size() + 1 > sizeof out.addr.sun_path)
      throw ValueError("'" + std::string(address) + "': an abstract name of 1 to " +
                       std::to_string(sizeof out.addr.sun_path - 1) + " bytes is needed");
    std::memcpy(out.addr.sun_path + 1, rest.data(), rest.size());
    out.length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + rest.size());
    return out;
  }
  if (!rest.starts_with('/') || rest.size() < 2 || rest.find('\0') != std::string_view::npos)
    throw ValueError("'" + std::string(address) +
                     "': expected unix:///absolute/path or unix://@abstract-name");
  if (rest.size() + 1 > sizeof out.addr.sun_path)
    throw ValueError("'" + std::string(address) + "': a socket path holds at most " +
                     std::to_string(sizeof out.addr.sun_path - 1) + " bytes");
  out.path = std::string(rest);
  std::memcpy(out.addr.sun_path, rest.data(), rest.size());
  out.length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + rest.size() + 1);
  return out;
}

// ---- reading ----

void StreamReader::begin_frame(std::uint64_t size) {
  frame_size_ = size;
  filled_ = 0;
  part_ = Part::kFrame;
  if (refusing_.empty()) frames_.emplace_back(static_cast<std::size_t>(size));
}

void StreamReader::take(const char* data, std::size_t size) {
  if (refusing_.empty()) {
    std::memcpy(static_cast<char*>(frames_.back().data()) + filled_, data, size);
  } else if (frames_.empty() && filled_ < peek_.size()) {  // the body of a refused message
    std::memcpy(peek_.data() + filled_, data,
                std::min<std::size_t>(size, peek_.size() - static_cast<std::size_t>(filled_)));
  }
  filled_ += size;
}

void StreamReader::refuse(std::string why, bool over_limit) {
  refusing_ = std::move(why);
  refusing_over_limit_ = over_limit;
  // The body read so far is peeked at, the rest of what was kept dropped.
  const auto& body = frames_.front();
  std::memcpy(peek_.data(), body.data(), std::min(peek_.size(), body.size()));
  peek_size_ = std::min(body.size(), peek_.size());
  frames_ = Frames();
  frames_.emplace_back();  // marks: body done
}

void StreamReader::end_frame(StreamInput& in) {
  if (kind_ != StreamKind::kMessage) {  // the transport's own: its endpoint handles it
    const StreamKind kind = std::exchange(kind_, StreamKind::kMessage);
    part_ = Part::kHeader;
    Frames control = std::exchange(frames_, Frames());
    segments_->on_control(kind, control.front().to_string_view());
    return;
  }
  if (!refusing_.empty() && frames_.empty()) frames_.emplace_back();  // marks: body done
  next_blob_or_end(in);
}

void StreamReader::next_blob_or_end(StreamInput& in) {
  if (blobs_left_ > 0) {
    part_ = Part::kBlobLength;
    return;
  }
  part_ = Part::kHeader;
  if (refusing_.empty()) {
    in.messages.push_back(std::move(frames_));
  } else {
    std::string_view body(reinterpret_cast<const char*>(peek_.data()), peek_size_);
    in.refused.push_back({peek_request_id(body), std::move(refusing_), refusing_over_limit_});
    refusing_.clear();
    refusing_over_limit_ = true;
  }
  frames_ = Frames();
}

std::string StreamReader::over_limit(std::uint64_t body, std::uint32_t blobs) const {
  if (body > limits_.max_body_bytes)
    return "message body of " + std::to_string(body) + " bytes (limit " +
           std::to_string(limits_.max_body_bytes) + ")";
  if (std::uint64_t{blobs} + 1 > limits_.max_frames)
    return "message of " + std::to_string(std::uint64_t{blobs} + 1) + " frames (limit " +
           std::to_string(limits_.max_frames) + ")";
  if (body > limits_.max_message_bytes)
    return "message of " + std::to_string(body) + " bytes (limit " +
           std::to_string(limits_.max_message_bytes) + ")";
  return {};
}

void StreamReader::parse(StreamInput& in) {
  while (true) {
    const std::size_t avail = end_ - begin_;
    const char* at = buffer_.data() + begin_;
    switch (part_) {
      case Part::kHeader: {
        if (avail < kHeaderBytes) return;
        const std::uint64_t body = load_u64(at);
        const std::uint32_t blobs = load_u32(at + 8);
        const std::uint32_t kind = load_u32(at + 12);
        if (kind > kLastStreamKind || (kind != 0 && !segments_))
          throw ProtocolError("not a zmanager stream message header");
        if (kind != 0 && (blobs != 0 || body > kMaxControlBody))
          throw ProtocolError("a stream control message of " + std::to_string(body) +
                              " bytes and " + std::to_string(blobs) + " blob frames");
        begin_ += kHeaderBytes;
        kind_ = static_cast<StreamKind>(kind);
        blobs_left_ = blobs;
        message_bytes_ = body;
        frames_ = Frames();
        peek_.fill(0);
        // Read past, not kept: the stream stays in step and the caller is told. (The
        // transport's own messages have their bound, checked above.)
        if (kind == 0) refusing_ = over_limit(body, blobs);
        if (refusing_.empty()) frames_.reserve(1 + blobs);
        peek_size_ = static_cast<std::size_t>(std::min<std::uint64_t>(body, peek_.size()));
        begin_frame(body);
        break;
      }
      case Part::kFrame: {
        const std::uint64_t need = frame_size_ - filled_;
        const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(need, avail));
        take(at, n);
        begin_ += n;
        if (filled_ < frame_size_) return;
        end_frame(in);
        break;
      }
      case Part::kBlobLength: {
        if (avail < kLengthBytes) return;
        const std::uint64_t word = load_u64(at);
        const bool placed = (word & kInSegmentBit) != 0;
        const std::uint64_t size = word & ~kInSegmentBit;
        if (placed && !segments_) throw ProtocolError("a blob frame in a segment, unasked for");
        begin_ += kLengthBytes;
        --blobs_left_;
        // Compared before adding: a length near 2^64 would wrap the total past the check.
        // (While a message is kept, its total so far is within the limit.)
        if (refusing_.empty() && size > limits_.max_message_bytes - message_bytes_)
          refuse("message of more than " + std::to_string(limits_.max_message_bytes) +
                     " bytes (limit)",
                 true);
        if (refusing_.empty()) message_bytes_ += size;
        if (placed) {
          segment_frame_size_ = size;
          part_ = Part::kSegmentPlace;
        } else {
          begin_frame(size);
        }
        break;
      }
      case Part::kSegmentPlace: {
        if (avail < 2 * kLengthBytes) return;
        const std::uint64_t segment = load_u64(at);
        const std::uint64_t offset = load_u64(at + kLengthBytes);
        begin_ += 2 * kLengthBytes;
        if (refusing_.empty()) {
          try {
            frames_.push_back(segments_->frame_in(segment, offset, segment_frame_size_));
          } catch (const ProtocolError&) {
            throw;  // the stream cannot be trusted on
          } catch (const std::exception& e) {
            refuse(e.what(), false);
          }
        }
        next_blob_or_end(in);
        break;
      }
    }
  }
}

void StreamReader::compact() {
  std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
  end_ -= begin_;
  begin_ = 0;
}

void StreamReader::feed(const char* data, std::size_t size, StreamInput& in) {
  while (size > 0) {
    if (begin_ == end_) begin_ = end_ = 0;
    const std::size_t n = std::min(size, buffer_.size() - end_);
    std::memcpy(buffer_.data() + end_, data, n);
    end_ += n;
    data += n;
    size -= n;
    parse(in);
    if (begin_ > 0) compact();  // the unparsed rest at the front
  }
}

ssize_t StreamReader::receive(int fd, char* into, std::size_t size) {
  if (!segments_ || !segments_->takes_descriptors()) return ::read(fd, into, size);
  // Room for more descriptors than a MAP passes: a read never takes two MAPs' at once (the
  // kernel stops a read after the bytes that came with descriptors).
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 2 * kMaxDescriptorsPerMap)];
  iovec piece{into, size};
  msghdr msg{};
  msg.msg_iov = &piece;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  const ssize_t n = ::recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
  if (n < 0) return n;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    std::vector<int> fds(count);
    std::memcpy(fds.data(), CMSG_DATA(c), count * sizeof(int));
    segments_->on_descriptors(fds);
  }
  if (msg.msg_flags & MSG_CTRUNC) throw ProtocolError("more descriptors came than a MAP passes");
  return n;
}

StreamReader::Status StreamReader::read_from(int fd, StreamInput& in, std::size_t max_messages) {
  while (in.count() < max_messages) {
    // The rest of a large frame goes straight into it, not through the buffer.
    if (part_ == Part::kFrame && begin_ == end_ && refusing_.empty() &&
        frame_size_ - filled_ >= buffer_.size() / 2) {
      char* into = static_cast<char*>(frames_.back().data()) + filled_;
      const ssize_t n = receive(fd, into, static_cast<std::size_t>(frame_size_ - filled_));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return Status::kOpen;
      if (n <= 0) return Status::kClosed;
      filled_ += static_cast<std::uint64_t>(n);
      if (filled_ == frame_size_) end_frame(in);
      continue;
    }
    if (begin_ == end_) {
      begin_ = end_ = 0;
    } else if (begin_ > 0 && end_ - begin_ < kHeaderBytes + kLengthBytes) {
      compact();  // a piece too short to parse: to the front, with room behind it
    }
    const std::size_t space = buffer_.size() - end_;
    if (space < kHeaderBytes + kLengthBytes) {  // a long run of small pieces: make room
      compact();
      continue;
    }
    const ssize_t n = receive(fd, buffer_.data() + end_, space);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return Status::kOpen;
    if (n <= 0) return Status::kClosed;
    end_ += static_cast<std::size_t>(n);
    parse(in);
    // A read that did not fill the buffer emptied the socket: asking again would only say so.
    if (static_cast<std::size_t>(n) < space) return Status::kOpen;
  }
  return Status::kOpen;
}

// ---- writing ----

void StreamWriter::push(Frames frames, std::span<const Placement> placements) {
  Queued q;
  const std::uint64_t body = frames.empty() ? 0 : frames.front().size();
  const std::uint32_t blobs = frames.empty() ? 0 : static_cast<std::uint32_t>(frames.size() - 1);
  std::memcpy(q.header.data(), &body, 8);
  std::memcpy(q.header.data() + 8, &blobs, 4);
  std::memset(q.header.data() + 12, 0, 4);
  q.total = kHeaderBytes + body;
  q.blob_heads.resize(blobs);
  for (std::uint32_t i = 0; i < blobs; ++i) {
    auto& head = q.blob_heads[i];
    std::uint64_t word = frames[i + 1].size();
    for (const auto& place : placements) {
      if (place.frame != i + 1) continue;
      head.placed = true;
      word = place.length | kInSegmentBit;
      std::memcpy(head.bytes.data() + 8, &place.segment, 8);
      std::memcpy(head.bytes.data() + 16, &place.offset, 8);
    }
    std::memcpy(head.bytes.data(), &word, 8);
    q.total += head.placed ? 3 * kLengthBytes : kLengthBytes + frames[i + 1].size();
  }
  if (frames.empty()) frames.emplace_back();
  q.frames = std::move(frames);
  queue_.push_back(std::move(q));
}

void StreamWriter::push_control(StreamKind kind, std::string_view body, std::vector<int> fds) {
  Frames frames;
  frames.emplace_back(body.data(), body.size());
  push(std::move(frames));
  auto& q = queue_.back();
  const auto k = static_cast<std::uint32_t>(kind);
  std::memcpy(q.header.data() + 12, &k, 4);
  q.fds = std::move(fds);
}

StreamWriter::Status StreamWriter::write_to(int fd) {
  // Many small messages leave in one system call; a large one in as few as the socket takes.
  constexpr std::size_t kMostPieces = 256;
  std::array<iovec, kMostPieces> pieces;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxDescriptorsPerMap)];
  while (!queue_.empty()) {
    std::size_t count = 0;
    bool first = true;
    for (auto& q : queue_) {
      if (count + 2 + 2 * q.blob_heads.size() > kMostPieces && count > 0) break;
      // Descriptors leave with the first byte of their message, which opens its system call.
      if (!first && !q.fds.empty()) break;
      first = false;
      std::size_t skip = q.written;
      auto add = [&](const void* data, std::size_t size) {
        if (skip >= size) {
          skip -= size;
          return;
        }
        if (count == kMostPieces) return;
        pieces[count++] = {const_cast<char*>(static_cast<const char*>(data)) + skip, size - skip};
        skip = 0;
      };
      add(q.header.data(), q.header.size());
      add(q.frames.front().data(), q.frames.front().size());
      for (std::size_t i = 0; i < q.blob_heads.size(); ++i) {
        const auto& head = q.blob_heads[i];
        add(head.bytes.data(), head.placed ? 3 * kLengthBytes : kLengthBytes);
        if (!head.placed) add(q.frames[i + 1].data(), q.frames[i + 1].size());
      }
      if (count == kMostPieces) break;
    }
    msghdr msg{};
    msg.msg_iov = pieces.data();
    msg.msg_iovlen = count;
    const auto& front = queue_.front();
    if (!front.fds.empty() && front.written == 0) {
      msg.msg_control = control;
      msg.msg_controllen = CMSG_SPACE(sizeof(int) * front.fds.size());
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int) * front.fds.size());
      std::memcpy(CMSG_DATA(c), front.fds.data(), sizeof(int) * front.fds.size());
    }
    // MSG_NOSIGNAL: a peer gone is an error here, not a SIGPIPE that ends the process.
    const ssize_t n = ::sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return Status::kPending;
      return Status::kBroken;
    }
    std::size_t sent = static_cast<std::size_t>(n);
    while (sent > 0) {
      auto& q = queue_.front();
      const std::size_t left = q.total - q.written;
      if (sent < left) {
        q.written += sent;
        break;
      }
      sent -= left;
      queue_.pop_front();
    }
  }
  return Status::kDone;
}

void StreamWriter::drop(bool keep_whole) {
  if (!keep_whole) {
    queue_.clear();
    return;
  }
  if (!queue_.empty() && queue_.front().written > 0) queue_.pop_front();
  // What names the connection's segments, or is the transport's own, meant nothing elsewhere.
  std::erase_if(queue_, [](const Queued& q) {
    if (q.header[12] || q.header[13] || q.header[14] || q.header[15]) return true;
    return std::any_of(q.blob_heads.begin(), q.blob_heads.end(),
                       [](const Queued::BlobHead& head) { return head.placed; });
  });
}

}  // namespace zmanager::wire
