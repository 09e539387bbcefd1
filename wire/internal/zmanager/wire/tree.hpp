// Reading a msgpack body into msgpack-c's object tree without msgpack-c's unpacker (internal).
//
// msgpack::unpack allocated twice per message for its own stacks, and its zone once more: three
// of the seven allocations a call cost the server, and its generic visitor a sixth of the
// instructions. This reader keeps its stack on the C stack and the nodes of a small tree inside
// the message (TreeArena); the tree is msgpack-c's own type, so everything that converts from
// it is unchanged. It accepts exactly what msgpack::unpack with the same limits accepts, into
// the same tree, which the fuzzer's decoder checks on every input it tries.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

#include <msgpack.hpp>

namespace zmanager::wire {

struct Limits;

/// Where a tree's arrays and maps live: first a buffer inside the arena (no allocation for the
/// few dozen nodes of a call or a reply), then a msgpack zone for bigger trees.
class TreeArena {
 public:
  TreeArena() = default;
  TreeArena(const TreeArena&) = delete;
  TreeArena& operator=(const TreeArena&) = delete;

  /// Storage for `count` objects of type T (msgpack::object or msgpack::object_kv).
  template <class T>
  T* allocate(std::size_t count) {
    return static_cast<T*>(allocate_bytes(count * sizeof(T)));
  }

 private:
  static constexpr std::size_t kInlineBytes = 16 * sizeof(msgpack::object);
  void* allocate_bytes(std::size_t bytes);

  alignas(msgpack::object) std::byte inline_[kInlineBytes];
  std::size_t inline_used_ = 0;
  std::optional<msgpack::zone> zone_;
};

/// The one msgpack value that fills `body`, its strings, bins and exts pointing into `body`
/// (which must outlive the tree), its arrays and maps in `arena`. Throws LimitError for a
/// container that declares more elements than `body` has bytes (pairs: half as many) or nests
/// deeper than limits.max_depth, and ProtocolError for anything malformed: a byte no format
/// uses, a value cut short (as soon as the containers read declare more elements than there are
/// bytes left), bytes left over.
msgpack::object read_tree(std::string_view body, const Limits& limits, TreeArena& arena);

}  // namespace zmanager::wire
