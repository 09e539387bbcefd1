// What the server does with the bytes of one incoming message before any object sees it: split
// into frames, parse under the limits, read the fields of its op, decode call arguments as the
// built-ins' and a typical method's parameter types, and as dynamic Values. Shared by the
// libFuzzer target and by the test that replays the corpus in every build.
#pragma once

#include <cstddef>
#include <cstdint>

namespace zmanager::fuzz {

/// Decodes one input (layout in request_decoder.cpp), and the same bytes as a same-host stream;
/// returns whether it parsed as a message either way.
/// Every rejection must be a zmanager::Error; anything else escaping (another exception, a
/// crash, a sanitizer report) is a bug.
bool decode_request(const std::uint8_t* data, std::size_t size);

/// Whether wire::read_tree and msgpack-c's unpacker, under the same limits (`max_depth`, and
/// the rest from the input's length), agree on these bytes as a whole message body: both read
/// the same tree, or both refuse them. decode_request throws std::logic_error when they do not.
bool tree_agrees_with_msgpack(const std::uint8_t* data, std::size_t size, std::size_t max_depth);

}  // namespace zmanager::fuzz
