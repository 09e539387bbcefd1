#include "zmanager/wire/segment.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstring>
#include <limits>
#include <utility>

#include "zmanager/errors.hpp"
#include "zmanager/wire/tree.hpp"

namespace zmanager::wire {
namespace {

constexpr unsigned kSeals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;

/// A control body that is an array of unsigned integers.
std::string encode_numbers(std::span<const std::uint64_t> numbers) {
  msgpack::sbuffer out;
  msgpack::packer<msgpack::sbuffer> pk(out);
  pk.pack_array(static_cast<std::uint32_t>(numbers.size()));
  for (std::uint64_t n : numbers) pk.pack(n);
  return std::string(out.data(), out.size());
}

/// Maps the whole file; closes `fd` and throws when the system refuses.
std::byte* map_shared(int fd, std::size_t size) {
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p != MAP_FAILED) return static_cast<std::byte*>(p);
  const int error = errno;
  ::close(fd);
  throw ConnectionError(std::string("cannot map a shared segment: ") + std::strerror(error));
}

/// A control message's body as a msgpack tree: small, and flat but for MAP's pairs.
template <class Read>
auto read_control(std::string_view body, Read read) {
  Limits limits;
  limits.max_body_bytes = kMaxControlBody;
  limits.max_message_bytes = kMaxControlBody;
  limits.max_depth = 2;
  TreeArena arena;
  const msgpack::object tree = read_tree(body, limits, arena);
  if (tree.type != msgpack::type::ARRAY)
    throw ProtocolError("a stream control message's body is not an array");
  return read(tree.via.array);
}

}  // namespace

SegmentMapping SegmentMapping::create(std::size_t size) {
  const int fd = ::memfd_create("zmanager-segment", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0)
    throw ConnectionError(std::string("cannot make a shared segment: ") + std::strerror(errno));
  if (::ftruncate(fd, static_cast<off_t>(size)) != 0 || ::fcntl(fd, F_ADD_SEALS, kSeals) != 0) {
    const int error = errno;
    ::close(fd);
    throw ConnectionError(std::string("cannot size a shared segment: ") + std::strerror(error));
  }
  return SegmentMapping(fd, map_shared(fd, size), size);
}

SegmentMapping SegmentMapping::adopt(int fd, std::size_t size) {
  struct stat st {};
  const int seals = ::fcntl(fd, F_GET_SEALS);
  // A file the server could shrink later would fault (SIGBUS) this process on access.
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
      static_cast<std::uint64_t>(st.st_size) != size || seals < 0 ||
      (static_cast<unsigned>(seals) & kSeals) != kSeals || size == 0) {
    ::close(fd);
    throw ProtocolError("the server sent a segment that is not a sealed memory file of " +
                        std::to_string(size) + " bytes");
  }
  return SegmentMapping(fd, map_shared(fd, size), size);
}

SegmentMapping SegmentMapping::open_in(std::uint64_t pid, std::uint64_t fd, std::size_t size) {
  const std::string path = "/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd);
  const int opened = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (opened < 0) throw ConnectionError("cannot open " + path + ": " + std::strerror(errno));
  return adopt(opened, size);
}

SegmentMapping::SegmentMapping(SegmentMapping&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)) {}

SegmentMapping& SegmentMapping::operator=(SegmentMapping&& other) noexcept {
  if (this != &other) {
    SegmentMapping gone(std::move(*this));
    fd_ = std::exchange(other.fd_, -1);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

SegmentMapping::~SegmentMapping() {
  if (data_) ::munmap(data_, size_);
  if (fd_ >= 0) ::close(fd_);
}

std::size_t segment_size_for(std::size_t bytes) {
  return std::bit_ceil(std::max(bytes, kSmallestSegment));
}

std::string encode_segment_ids(std::span<const std::uint64_t> ids) {
  return encode_numbers(ids);
}

std::vector<std::string> encode_segment_id_lists(std::span<const std::uint64_t> ids) {
  std::vector<std::string> bodies;
  for (std::size_t at = 0; at < ids.size(); at += kMaxSegmentsPerControl)
    bodies.push_back(
        encode_segment_ids(ids.subspan(at, std::min(kMaxSegmentsPerControl, ids.size() - at))));
  return bodies;
}

std::vector<std::uint64_t> decode_segment_ids(std::string_view body) {
  return read_control(body, [](const msgpack::object_array& list) {
    if (list.size > kMaxSegmentsPerControl)
      throw ProtocolError("a stream control message names more than " +
                          std::to_string(kMaxSegmentsPerControl) + " segments");
    std::vector<std::uint64_t> ids;
    ids.reserve(list.size);
    for (std::uint32_t i = 0; i < list.size; ++i) ids.push_back(as_u64(list.ptr[i], "segment id"));
    return ids;
  });
}

std::string encode_segment_sizes(std::span<const SegmentSize> segments) {
  msgpack::sbuffer out;
  msgpack::packer<msgpack::sbuffer> pk(out);
  pk.pack_array(static_cast<std::uint32_t>(segments.size()));
  for (const auto& s : segments) {
    pk.pack_array(s.fd >= 0 ? 3 : 2);
    pk.pack(s.id);
    pk.pack(s.size);
    if (s.fd >= 0) pk.pack(static_cast<std::uint64_t>(s.fd));
  }
  return std::string(out.data(), out.size());
}

std::vector<SegmentSize> decode_segment_sizes(std::string_view body) {
  return read_control(body, [](const msgpack::object_array& list) {
    if (list.size > kMaxDescriptorsPerMap)
      throw ProtocolError("a MAP message names more than " + std::to_string(kMaxDescriptorsPerMap) +
                          " segments");
    std::vector<SegmentSize> out;
    for (std::uint32_t i = 0; i < list.size; ++i) {
      const msgpack::object& pair = list.ptr[i];
      if (pair.type != msgpack::type::ARRAY || pair.via.array.size < 2 || pair.via.array.size > 3)
        throw ProtocolError("a MAP entry is not [segment_id, size] or [segment_id, size, fd]");
      SegmentSize entry{as_u64(pair.via.array.ptr[0], "segment id"),
                        as_u64(pair.via.array.ptr[1], "segment size")};
      if (pair.via.array.size == 3) {
        const std::uint64_t fd = as_u64(pair.via.array.ptr[2], "segment descriptor");
        if (fd > static_cast<std::uint64_t>(std::numeric_limits<int>::max()))
          throw ProtocolError("a MAP entry's descriptor is out of range");
        entry.fd = static_cast<std::int64_t>(fd);
      }
      out.push_back(entry);
    }
    return out;
  });
}

std::string encode_lease(LeaseRequest request) {
  const std::uint64_t fields[] = {request.count, request.min_size};
  return encode_numbers(fields);
}

LeaseRequest decode_lease(std::string_view body) {
  return read_control(body, [](const msgpack::object_array& list) {
    if (list.size < 2) throw ProtocolError("LEASE is [count, min_size]");
    return LeaseRequest{as_u64(list.ptr[0], "segment count"), as_u64(list.ptr[1], "segment size")};
  });
}

bool is_transport_frame(const zmq::message_t& frame) {
  return frame.size() > 0 && *static_cast<const unsigned char*>(frame.data()) == kTransportMark;
}

zmq::message_t transport_frame(StreamKind kind, std::string_view body) {
  zmq::message_t frame(body.size() + 2);
  auto* out = static_cast<unsigned char*>(frame.data());
  out[0] = kTransportMark;
  out[1] = static_cast<unsigned char>(kind);
  if (!body.empty()) std::memcpy(out + 2, body.data(), body.size());
  return frame;
}

TransportFrame read_transport_frame(const zmq::message_t& frame) {
  const auto* bytes = static_cast<const unsigned char*>(frame.data());
  if (frame.size() < 2 || bytes[0] != kTransportMark)
    throw ProtocolError("a transport frame shorter than its mark and kind");
  if (bytes[1] > kLastZmqKind)
    throw ProtocolError("a transport frame of unknown kind " + std::to_string(bytes[1]));
  if (frame.size() - 2 > kMaxControlBody)
    throw ProtocolError("a transport frame's body is over " + std::to_string(kMaxControlBody) +
                        " bytes");
  return {static_cast<StreamKind>(bytes[1]),
          std::string_view(reinterpret_cast<const char*>(bytes + 2), frame.size() - 2)};
}

std::string encode_placements(std::span<const Placement> placements) {
  msgpack::sbuffer out;
  msgpack::packer<msgpack::sbuffer> pk(out);
  pk.pack_array(static_cast<std::uint32_t>(placements.size()));
  for (const auto& p : placements) {
    pk.pack_array(4);
    pk.pack(static_cast<std::uint64_t>(p.frame));
    pk.pack(p.segment);
    pk.pack(p.offset);
    pk.pack(p.length);
  }
  return std::string(out.data(), out.size());
}

std::vector<Placement> decode_placements(std::string_view body, std::size_t frames) {
  return read_control(body, [frames](const msgpack::object_array& list) {
    if (list.size == 0) throw ProtocolError("a placement frame that places nothing");
    std::vector<Placement> out;
    out.reserve(list.size);
    std::vector<bool> named(frames);  // frames is within the message's frame limit
    for (std::uint32_t i = 0; i < list.size; ++i) {
      const msgpack::object& entry = list.ptr[i];
      if (entry.type != msgpack::type::ARRAY || entry.via.array.size != 4)
        throw ProtocolError("a placement is not [frame, segment_id, offset, length]");
      const msgpack::object* f = entry.via.array.ptr;
      const std::uint64_t frame = as_u64(f[0], "placed frame");
      if (frame == 0 || frame >= frames)
        throw ProtocolError("a placement names frame " + std::to_string(frame) +
                            " of a message of " + std::to_string(frames) + " frames");
      if (named[frame]) throw ProtocolError("a placement names a frame twice");
      named[frame] = true;
      out.push_back({static_cast<std::size_t>(frame), as_u64(f[1], "segment id"),
                     as_u64(f[2], "segment offset"), as_u64(f[3], "blob length")});
    }
    return out;
  });
}

std::string encode_offer(Offer offer) {
  const std::uint64_t fields[] = {offer.pid, offer.fd, offer.size};
  return encode_numbers(fields);
}

Offer decode_offer(std::string_view body) {
  return read_control(body, [](const msgpack::object_array& list) {
    if (list.size < 3) throw ProtocolError("OFFER is [pid, fd, size]");
    return Offer{as_u64(list.ptr[0], "server pid"), as_u64(list.ptr[1], "probe descriptor"),
                 as_u64(list.ptr[2], "probe size")};
  });
}

std::string encode_proof(std::span<const std::byte> token) {
  msgpack::sbuffer out;
  msgpack::packer<msgpack::sbuffer> pk(out);
  pk.pack_array(1);
  pk.pack_bin(static_cast<std::uint32_t>(token.size()));
  pk.pack_bin_body(reinterpret_cast<const char*>(token.data()),
                   static_cast<std::uint32_t>(token.size()));
  return std::string(out.data(), out.size());
}

std::string decode_proof(std::string_view body) {
  return read_control(body, [](const msgpack::object_array& list) {
    if (list.size < 1 || list.ptr[0].type != msgpack::type::BIN)
      throw ProtocolError("PROOF is [token]");
    return std::string(list.ptr[0].via.bin.ptr, list.ptr[0].via.bin.size);
  });
}

}  // namespace zmanager::wire
