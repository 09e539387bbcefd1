// Sending many calls as few messages, as a Redis pipeline does.
#pragma once

#include <memory>

#include "zmanager/detail/channel.hpp"

namespace zmanager {

/// While a Batch lives, the calls made on its connection (from any thread, through any proxy
/// of that connection) are held and leave together, up to 32 in one message, instead of one
/// message each: when the Batch ends, at flush(), when 32 are held, and whenever a thread waits
/// for a call of that connection (so that waiting on a held call never stalls). A future that
/// is already done is read without a wait. Calls keep their order and each still gets its own
/// answer or error. Without a Batch, calls made while others are in flight are held the same
/// way, but for at most 500 µs; a Batch also holds the first calls of a burst, and holds its
/// calls as long as it lives. A Batch changes nothing for a server older than protocol version
/// 4, whose calls leave one by one as before.
///
///   zmanager::Batch batch(maths);
///   for (int i = 0; i < 1000; ++i) sums.push_back(maths.async().add(i, 1));
///   batch.flush();  // or let it go out of scope
class Batch {
 public:
  explicit Batch(std::shared_ptr<detail::Channel> channel) : channel_(std::move(channel)) {
    if (channel_) channel_->hold_calls();
  }
  /// The connection of `proxy`.
  template <class P>
  requires requires(const P& p) { p.ref(); }
  explicit Batch(const P& proxy)
      : Batch(proxy.ref() ? proxy.ref()->channel() : std::shared_ptr<detail::Channel>{}) {}
  ~Batch() {
    if (channel_) channel_->send_held_calls(/*stop_holding=*/true);
  }
  Batch(const Batch&) = delete;
  Batch& operator=(const Batch&) = delete;

  /// Sends what is held now; later calls are held again.
  void flush() {
    if (channel_) channel_->send_held_calls(/*stop_holding=*/false);
  }

 private:
  std::shared_ptr<detail::Channel> channel_;
};

}  // namespace zmanager
