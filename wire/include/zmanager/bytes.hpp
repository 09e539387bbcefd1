// zmanager::Bytes: a byte buffer that crosses the wire as its own frame.
#pragma once

#include <cstddef>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>

namespace zmanager {

/// An owned, mutable byte buffer (Python's `bytes`). Copies are deep; moves are cheap. A Bytes
/// received from the wire keeps the received frame alive instead of copying it, which is why the
/// storage is held through a type-erased owner.
class Bytes {
 public:
  Bytes() = default;
  explicit Bytes(std::size_t size) : Bytes(allocate(size)) {}
  Bytes(const void* data, std::size_t size) : Bytes(allocate(size)) {
    if (size) std::memcpy(data_, data, size);
  }
  explicit Bytes(std::string_view s) : Bytes(s.data(), s.size()) {}
  Bytes(const char* s) : Bytes(std::string_view(s)) {}  // NOLINT: literal convenience

  /// Adopts memory owned by `owner` without copying (used for frames received from the wire).
  Bytes(std::shared_ptr<void> owner, std::byte* data, std::size_t size)
      : owner_(std::move(owner)), data_(data), size_(size) {}

  Bytes(const Bytes& other) : Bytes(other.data_, other.size_) {}
  Bytes& operator=(const Bytes& other) {
    if (this != &other) *this = Bytes(other);
    return *this;
  }
  Bytes(Bytes&& other) noexcept
      : owner_(std::move(other.owner_)), data_(other.data_), size_(other.size_) {
    other.data_ = nullptr;
    other.size_ = 0;
  }
  Bytes& operator=(Bytes&& other) noexcept {
    owner_ = std::move(other.owner_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    return *this;
  }

  std::byte* data() noexcept { return data_; }
  const std::byte* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  std::span<std::byte> span() noexcept { return {data_, size_}; }
  std::span<const std::byte> span() const noexcept { return {data_, size_}; }
  std::string_view view() const noexcept { return {reinterpret_cast<const char*>(data_), size_}; }
  std::string str() const { return std::string(view()); }

  /// A second handle on the same storage (no copy). Internal: used to hand a received frame to
  /// the decoder; user code gets deep copies.
  Bytes share() const { return Bytes(owner_, data_, size_); }
  /// No other Bytes refers to this storage.
  bool unshared() const noexcept { return owner_.use_count() == 1; }

  friend bool operator==(const Bytes& a, const Bytes& b) noexcept { return a.view() == b.view(); }

 private:
  static Bytes allocate(std::size_t size) {
    if (size == 0) return Bytes();
    // The bytes and their shared count in one allocation, where `new` and a shared_ptr made
    // two (each 64-byte item through a queue paid them on the server and on the consumer).
    auto storage = std::make_shared_for_overwrite<std::byte[]>(size);
    std::byte* raw = storage.get();
    return Bytes(std::shared_ptr<void>(std::move(storage), raw), raw, size);
  }

  std::shared_ptr<void> owner_;
  std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace zmanager
