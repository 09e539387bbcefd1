// A ZeroMQ peer speaking the protocol by hand, from docs/protocol.md alone, as another
// language's client would: for the tests that send what the C++ client never would.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <msgpack.hpp>
#include <zmq.hpp>

#include "zmanager/wire/protocol.hpp"

namespace test {

using namespace std::chrono_literals;
namespace wire = zmanager::wire;

template <class... T>
std::string body(const T&... fields) {
  msgpack::sbuffer b;
  msgpack::packer<msgpack::sbuffer> pk(b);
  pk.pack_array(sizeof...(T));
  (pk.pack(fields), ...);
  return std::string(b.data(), b.size());
}

// A peer that speaks the protocol by hand, from docs/protocol.md. It says version 2 unless told
// otherwise: a version 3 peer must also read BATCH messages (section 6), which recv() returns
// as they come.
class RawPeer {
 public:
  explicit RawPeer(const std::string& address, std::uint32_t version = 2) : version_(version) {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.connect(address);
  }
  void send(const std::vector<std::string>& frames) {
    for (std::size_t i = 0; i < frames.size(); ++i)
      socket_.send(zmq::buffer(frames[i]),
                   i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
  }
  void send_frames(wire::Frames& frames) { wire::send_frames(socket_, frames); }
  /// The next message's frames as they came, or nothing within `timeout`.
  std::optional<wire::Frames> recv_raw(std::chrono::milliseconds timeout = 10s) {
    zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, timeout) <= 0) return std::nullopt;
    return wire::recv_frames(socket_);
  }
  std::shared_ptr<wire::Inbound> recv(std::chrono::milliseconds timeout = 10s) {
    auto frames = recv_raw(timeout);
    return frames ? wire::Inbound::parse(std::move(*frames), {}) : nullptr;
  }
  wire::WireError error_of(const std::shared_ptr<wire::Inbound>& in) {
    EXPECT_TRUE(in) << "no reply";
    if (!in) return {};
    EXPECT_EQ(in->op(), wire::Op::kError);
    wire::WireError e;
    if (in->op() == wire::Op::kError) in->field(2).convert(e);
    return e;
  }
  /// Sends HELLO with `nonce`; returns the server's answer (CHALLENGE, or an error).
  std::shared_ptr<wire::Inbound> hello(const wire::Nonce& nonce) {
    msgpack::sbuffer b;
    msgpack::packer<msgpack::sbuffer> pk(b);
    pk.pack_array(4);
    pk.pack(1);
    pk.pack(version_);
    pk.pack_bin(32);
    pk.pack_bin_body(reinterpret_cast<const char*>(nonce.data()), 32);
    pk.pack("raw");
    send({std::string(b.data(), b.size())});
    return recv();
  }
  /// Answers a CHALLENGE with AUTH for `key`; returns WELCOME (or the error).
  std::shared_ptr<wire::Inbound> auth(const std::string& key, const wire::Nonce& nonce,
                                      const wire::Inbound& challenge) {
    wire::Nonce server_nonce;
    wire::read_nonce(challenge.field(2), server_nonce);
    auto mac = wire::proof(key, wire::kClientLabel, server_nonce, nonce);
    msgpack::sbuffer a;
    msgpack::packer<msgpack::sbuffer> apk(a);
    apk.pack_array(2);
    apk.pack(3);
    apk.pack_bin(32);
    apk.pack_bin_body(reinterpret_cast<const char*>(mac.data()), 32);
    send({std::string(a.data(), a.size())});
    return recv();
  }
  /// The whole handshake; returns the WELCOME (or the error) message.
  std::shared_ptr<wire::Inbound> handshake(const std::string& key) {
    auto nonce = wire::random_nonce();
    auto challenge = hello(nonce);
    if (!challenge || challenge->op() != wire::Op::kChallenge) return challenge;
    return auth(key, nonce, *challenge);
  }

 private:
  std::uint32_t version_;
  zmq::context_t context_{1};
  zmq::socket_t socket_{context_, zmq::socket_type::dealer};
};

}  // namespace test
