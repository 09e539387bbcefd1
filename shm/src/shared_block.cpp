#include <pthread.h>
#include <sys/mman.h>

#include <cerrno>
#include <ctime>

#include "zmanager/shared_value.hpp"

namespace zmanager {

namespace detail {
// At the start of the mapping; the data follows at the next cache line.
struct SharedBlockHeader {
  pthread_mutex_t mutex;
  std::uint64_t recovered;
};
}  // namespace detail

namespace {
constexpr std::size_t kDataOffset = 64 * ((sizeof(detail::SharedBlockHeader) + 63) / 64);
}

SharedBlock::SharedBlock(std::size_t bytes, bool with_lock) : bytes_(bytes), has_lock_(with_lock) {
  mapped_ = kDataOffset + (bytes == 0 ? 1 : bytes);
  mapping_ = ::mmap(nullptr, mapped_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mapping_ == MAP_FAILED) throw_os_error(errno, "shared value");
  auto* header = new (mapping_) detail::SharedBlockHeader{};
  data_ = static_cast<std::byte*>(mapping_) + kDataOffset;
  if (!with_lock) return;
  pthread_mutexattr_t attr;
  ::pthread_mutexattr_init(&attr);
  ::pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
  // Robust: a holder's death hands the next locker EOWNERDEAD instead of a lock held forever.
  ::pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
  ::pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
  int rc = ::pthread_mutex_init(&header->mutex, &attr);
  ::pthread_mutexattr_destroy(&attr);
  if (rc != 0) {
    ::munmap(mapping_, mapped_);
    throw_os_error(rc, "shared value lock");
  }
  lock_ = SharedLock(header);
}

SharedBlock::~SharedBlock() {
  // The mutex is not destroyed: other processes may still use it; the mapping goes with the
  // last of them.
  ::munmap(mapping_, mapped_);
}

SharedLock& SharedBlock::lock() {
  if (!has_lock_) throw ValueError("this shared value was made with lock=false");
  return lock_;
}

bool SharedLock::took(int rc) {
  if (rc == 0) return true;
  if (rc == EOWNERDEAD) {
    // The holder died: the lock is ours, made usable again, and the take-over counted.
    ::pthread_mutex_consistent(&header_->mutex);
    ++header_->recovered;
    return true;
  }
  if (rc == EBUSY || rc == ETIMEDOUT) return false;
  throw_os_error(rc, "shared value lock");
}

void SharedLock::lock() {
  took(::pthread_mutex_lock(&header_->mutex));
}

bool SharedLock::try_lock() {
  return took(::pthread_mutex_trylock(&header_->mutex));
}

bool SharedLock::try_lock_for(std::chrono::nanoseconds timeout) {
  timespec deadline{};
  ::clock_gettime(CLOCK_REALTIME, &deadline);
  auto ns = deadline.tv_nsec + std::max<std::int64_t>(0, timeout.count());
  deadline.tv_sec += static_cast<time_t>(ns / 1'000'000'000);
  deadline.tv_nsec = static_cast<long>(ns % 1'000'000'000);
  return took(::pthread_mutex_timedlock(&header_->mutex, &deadline));
}

void SharedLock::unlock() {
  int rc = ::pthread_mutex_unlock(&header_->mutex);
  if (rc != 0) throw_os_error(rc, "shared value lock (unlock by a non-holder?)");
}

std::uint64_t SharedLock::recovered() const {
  return header_->recovered;
}

}  // namespace zmanager
