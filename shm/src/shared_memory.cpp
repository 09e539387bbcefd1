#include "zmanager/shared_memory.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <random>
#include <utility>

#include "zmanager/errors.hpp"

namespace zmanager {

namespace {

// Python's auto names: "psm_" + 8 hex digits, short enough for every platform's limit.
std::string random_segment_name() {
  static thread_local std::mt19937_64 generator{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string name = "psm_";
  auto bits = generator();
  for (int i = 0; i < 8; ++i, bits >>= 4) name += kHex[bits & 0xf];
  return name;
}

std::string posix_name(const std::string& name) {
  return "/" + name;
}

// Closes the descriptor when the constructor returns or throws: the mapping does not need it.
class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;

 private:
  int fd_;
};

}  // namespace

SharedMemory::SharedMemory(std::optional<std::string> name, bool create, std::int64_t size) {
  if (size < 0) throw ValueError("'size' must be a positive integer");
  if (create && size == 0) throw ValueError("'size' must be a positive number different from zero");
  if (!name && !create) throw ValueError("'name' can only be None if create=True");

  int fd = -1;
  if (!name) {
    // A fresh name that happens to exist is drawn again, as Python does.
    do {
      name_ = random_segment_name();
      fd = ::shm_open(posix_name(name_).c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
    } while (fd < 0 && errno == EEXIST);
  } else {
    name_ = std::move(*name);
    int flags = create ? O_CREAT | O_EXCL | O_RDWR : O_RDWR;
    fd = ::shm_open(posix_name(name_).c_str(), flags, 0600);
  }
  if (fd < 0) throw_os_error(errno, name_);
  FileDescriptor descriptor(fd);

  if (create) {
    if (::ftruncate(fd, static_cast<off_t>(size)) != 0) {
      int error = errno;
      ::shm_unlink(posix_name(name_).c_str());  // not left behind half made
      throw_os_error(error, name_);
    }
    size_ = static_cast<std::size_t>(size);
  } else {
    struct stat st {};
    if (::fstat(fd, &st) != 0) throw_os_error(errno, name_);
    if (st.st_size == 0)
      throw ValueError("cannot map an empty shared memory segment: '" + name_ + "'");
    size_ = static_cast<std::size_t>(st.st_size);
  }

  void* mapped = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (mapped == MAP_FAILED) {
    int error = errno;
    if (create) ::shm_unlink(posix_name(name_).c_str());
    throw_os_error(error, name_);
  }
  data_ = static_cast<std::byte*>(mapped);
}

SharedMemory::~SharedMemory() {
  close();
}

SharedMemory::SharedMemory(SharedMemory&& other) noexcept
    : name_(std::move(other.name_)),
      data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)) {}

SharedMemory& SharedMemory::operator=(SharedMemory&& other) noexcept {
  if (this != &other) {
    close();
    name_ = std::move(other.name_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

std::span<std::byte> SharedMemory::buf() const {
  if (!data_) throw ValueError("SharedMemory '" + name_ + "' is closed");
  return {data_, size_};
}

void SharedMemory::close() noexcept {
  if (data_) ::munmap(data_, size_);
  data_ = nullptr;
}

void SharedMemory::unlink() {
  if (::shm_unlink(posix_name(name_).c_str()) != 0) throw_os_error(errno, name_);
}

}  // namespace zmanager
