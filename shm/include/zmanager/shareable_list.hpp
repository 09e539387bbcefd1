// zmanager::ShareableList: Python's multiprocessing.shared_memory.ShareableList, byte for byte,
// so a C++ process and a Python process share one list by the name of its segment.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include "zmanager/shared_memory.hpp"
#include "zmanager/value.hpp"

namespace zmanager {

/// A fixed-length list of int, float, bool, None, str and bytes values in a shared-memory
/// segment, laid out as Python's ShareableList (docs/shared-memory.md): each item has a slot
/// sized when the list is made (8 bytes, or for str/bytes 8 × (length / 8 + 1)); an item may
/// later take any kind that fits its slot, and a str or bytes longer than its slot is a
/// ValueError. Like Python's, it has no lock: writers of one item coordinate themselves.
class ShareableList {
 public:
  /// A new list of `items` in a new segment (under a fresh `psm_` name unless `name` is given).
  /// TypeError for an item of another kind (a list, a dict, a proxy); ValueError for an integer
  /// above int64 or a str/bytes of 10 MB or more (its format would not fit in 8 characters).
  ShareableList(std::initializer_list<Value> items, std::optional<std::string> name = std::nullopt);
  explicit ShareableList(const std::vector<Value>& items,
                         std::optional<std::string> name = std::nullopt);
  /// Any range of values a Value can hold: `ShareableList(std::vector<long>(2000))`.
  template <class Range>
  requires(!std::is_same_v<std::decay_t<Range>, std::vector<Value>> &&
           requires(const Range& r) {
             Value(*std::begin(r));
           }) explicit ShareableList(const Range& items,
                                     std::optional<std::string> name = std::nullopt)
      : ShareableList(std::vector<Value>(std::begin(items), std::end(items)), std::move(name)) {}

  /// The list in the existing segment `name` (Python's `ShareableList(name=...)`);
  /// FileNotFoundError if there is none, ValueError if the segment does not hold a list.
  static ShareableList attach(const std::string& name);

  std::size_t size() const { return size_; }
  /// The item at `index` (negative counts from the end); IndexError outside the list.
  Value get(std::int64_t index) const;
  /// Stores `value` at `index`: IndexError, TypeError (kind), ValueError (does not fit).
  void set(std::int64_t index, const Value& value);

  /// `list[i]` reads, `list[i] = v` writes.
  class Item {
   public:
    operator Value() const { return list_.get(index_); }
    Item& operator=(const Value& value) {
      list_.set(index_, value);
      return *this;
    }
    template <class T>
    T as() const {
      return list_.get(index_).as<T>();
    }

   private:
    friend class ShareableList;
    Item(ShareableList& list, std::int64_t index) : list_(list), index_(index) {}
    ShareableList& list_;
    std::int64_t index_;
  };
  Item operator[](std::int64_t index) { return Item(*this, index); }
  Value operator[](std::int64_t index) const { return get(index); }

  /// The first position holding a value equal to `value` (Python's equality: 1 == 1.0 ==
  /// True); ValueError if none does.
  std::size_t index(const Value& value) const;
  std::size_t count(const Value& value) const;
  std::vector<Value> to_vector() const;
  /// Python's `.format`: every item's struct format, joined ("8s8sdqxxxxxx?xxxxxxxx?q").
  std::string format() const;

  SharedMemory& shm() { return shm_; }
  const SharedMemory& shm() const { return shm_; }

  /// How a new list is laid out (internal).
  struct Plan;

 private:
  explicit ShareableList(SharedMemory shm);
  ShareableList(const std::vector<Value>& items, const Plan& plan, std::optional<std::string> name);
  std::size_t position(std::int64_t index) const;
  // Item i's fields in the segment (see the layout in shareable_list.cpp).
  std::byte* slot_at(std::size_t i) const;
  std::byte* format_at(std::size_t i) const;
  std::byte* code_at(std::size_t i) const;

  SharedMemory shm_;
  std::size_t size_ = 0;
  std::vector<std::int64_t> offsets_;  // size_ + 1 slot offsets from the data start
};

}  // namespace zmanager
