// zmanager::Future<T>: the result of a pipelined call.
#pragma once

#include <chrono>
#include <memory>

#include "zmanager/detail/channel.hpp"

namespace zmanager {

/// The pending result of an asynchronous call (`proxy.async().add(1, 2)`). Many can be in flight
/// on one connection; replies may complete them in any order. `get()` waits, then returns the
/// value or throws the remote error; it may be called once.
template <class T>
class Future {
 public:
  Future() = default;
  explicit Future(std::shared_ptr<detail::CallState> state) : state_(std::move(state)) {}

  bool valid() const noexcept { return state_ != nullptr; }
  bool ready() const { return state_ && state_->ready(); }
  void wait() const { state_->wait(); }
  template <class Rep, class Period>
  bool wait_for(std::chrono::duration<Rep, Period> d) const {
    return state_->wait_until(std::chrono::steady_clock::now() + d);
  }

  T get() {
    auto state = std::move(state_);
    if (!state) throw Error("Future::get() on an empty future");
    wire::Payload payload = state->take();
    return detail::decode_payload<T>(state->channel(), payload, state->session());
  }

 private:
  std::shared_ptr<detail::CallState> state_;
};

}  // namespace zmanager
