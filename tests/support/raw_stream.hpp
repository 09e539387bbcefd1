// A client speaking the same-host stream's framing by hand (docs/protocol.md 1.1), as another
// language's client would: for the tests that send what the C++ client never would.
#pragma once

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <msgpack.hpp>

#include "zmanager/wire/stream.hpp"

namespace test {

using namespace std::chrono_literals;

/// A client speaking the stream framing by hand, as another language's client would.
class RawStream {
 public:
  /// `segments`: what the server's own messages go to (else they are a malformed stream).
  explicit RawStream(const std::string& address,
                     zmanager::wire::SegmentEndpoint* segments = nullptr)
      : reader_(limits_, segments) {
    auto where = zmanager::wire::parse_unix_address(address);
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (::connect(fd_, reinterpret_cast<const sockaddr*>(&where.addr), where.length) != 0)
      throw std::runtime_error("cannot connect to " + address);
  }
  ~RawStream() { ::close(fd_); }
  void write(const std::string& bytes) {
    ASSERT_EQ(::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(bytes.size()));
  }
  /// The next message's body, unpacked; nullopt when the server closed the connection or after
  /// the timeout.
  std::optional<msgpack::object_handle> read(std::chrono::milliseconds timeout = 10s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (in_.messages.empty()) {
      auto left =
          std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0 || closed_) return std::nullopt;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buffer[4096];
      ssize_t n = ::read(fd_, buffer, sizeof buffer);
      if (n <= 0) {
        closed_ = true;
        continue;
      }
      reader_.feed(buffer, static_cast<std::size_t>(n), in_);
    }
    auto frames = std::move(in_.messages.front());
    in_.messages.erase(in_.messages.begin());
    return msgpack::unpack(static_cast<const char*>(frames[0].data()), frames[0].size());
  }
  /// After a refused message and a HELLO: reads the ERROR (of `kind` and `type`), then the
  /// CHALLENGE that shows the stream stayed in step. Returns the error's fields.
  std::map<std::string, std::string> expect_refused_then_challenge(const std::string& kind,
                                                                   const std::string& type) {
    std::map<std::string, std::string> wire_error;
    auto error = read();
    EXPECT_TRUE(error) << "no answer to the refused message";
    if (!error) return wire_error;
    auto fields = error->get().as<std::vector<msgpack::object>>();
    EXPECT_GE(fields.size(), 3u);
    if (fields.size() < 3) return wire_error;
    EXPECT_EQ(fields[0].as<int>(), 7) << "an ERROR";
    wire_error = fields[2].as<std::map<std::string, std::string>>();
    EXPECT_EQ(wire_error["kind"], kind);
    EXPECT_EQ(wire_error["type"], type);
    auto challenge = read();
    EXPECT_TRUE(challenge) << "the hello after the refused message was not answered";
    if (challenge) {
      EXPECT_EQ(challenge->get().via.array.ptr[0].as<int>(), 2) << "a CHALLENGE";
    }
    return wire_error;
  }
  bool closed_by_server(std::chrono::milliseconds timeout = 10s) {
    while (read(timeout)) {
    }
    return closed_;
  }

  static std::string message(const std::string& body, std::uint32_t reserved = 0) {
    std::string out(16, '\0');
    std::uint64_t size = body.size();
    std::memcpy(out.data(), &size, 8);
    std::memcpy(out.data() + 12, &reserved, 4);
    return out + body;
  }
  /// A message whose one blob frame names `length` bytes at `offset` in `segment`.
  static std::string message_in_segment(const std::string& body, std::uint64_t segment,
                                        std::uint64_t offset, std::uint64_t length) {
    std::string out = message(body);
    const std::uint32_t blobs = 1;
    std::memcpy(out.data() + 8, &blobs, 4);
    const std::uint64_t words[] = {length | zmanager::wire::kInSegmentBit, segment, offset};
    out.append(reinterpret_cast<const char*>(words), sizeof words);
    return out;
  }
  static std::string hello() {
    msgpack::sbuffer buf;
    msgpack::packer<msgpack::sbuffer> pk(buf);
    pk.pack_array(4);
    pk.pack(1);
    pk.pack(2);
    std::string nonce(32, 'n');
    pk.pack_bin(32);
    pk.pack_bin_body(nonce.data(), 32);
    pk.pack("raw-stream");
    return message(std::string(buf.data(), buf.size()));
  }

 private:
  int fd_ = -1;
  zmanager::wire::Limits limits_;
  zmanager::wire::StreamReader reader_;
  zmanager::wire::StreamInput in_;
  bool closed_ = false;
};

}  // namespace test
