#include "zmanager/wire/segment.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstring>
#include <utility>

#include "zmanager/errors.hpp"
#include "zmanager/wire/tree.hpp"

namespace zmanager::wire {
namespace {

constexpr unsigned kSeals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;

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
  msgpack::sbuffer out;
  msgpack::packer<msgpack::sbuffer> pk(out);
  pk.pack_array(static_cast<std::uint32_t>(ids.size()));
  for (std::uint64_t id : ids) pk.pack(id);
  return std::string(out.data(), out.size());
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
    pk.pack_array(2);
    pk.pack(s.id);
    pk.pack(s.size);
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
      if (pair.type != msgpack::type::ARRAY || pair.via.array.size != 2)
        throw ProtocolError("a MAP entry is not [segment_id, size]");
      out.push_back({as_u64(pair.via.array.ptr[0], "segment id"),
                     as_u64(pair.via.array.ptr[1], "segment size")});
    }
    return out;
  });
}

std::string encode_lease(LeaseRequest request) {
  msgpack::sbuffer out;
  msgpack::packer<msgpack::sbuffer> pk(out);
  pk.pack_array(2);
  pk.pack(request.count);
  pk.pack(request.min_size);
  return std::string(out.data(), out.size());
}

LeaseRequest decode_lease(std::string_view body) {
  return read_control(body, [](const msgpack::object_array& list) {
    if (list.size < 2) throw ProtocolError("LEASE is [count, min_size]");
    return LeaseRequest{as_u64(list.ptr[0], "segment count"), as_u64(list.ptr[1], "segment size")};
  });
}

}  // namespace zmanager::wire
