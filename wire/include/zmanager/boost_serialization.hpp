// Types that already have a Boost.Serialization `serialize()` member cross the wire without new
// code: they travel as an opaque value (ext type 3) holding a binary archive. Binary archives
// are not portable between architectures or Boost versions; both ends must match.
#pragma once

#include <sstream>
#include <string>
#include <type_traits>

#include <boost/archive/binary_iarchive.hpp>
#include <boost/archive/binary_oarchive.hpp>

#include "zmanager/wire/codec.hpp"

namespace zmanager::detail {

template <class T>
concept BoostSerializable =
    std::is_class_v<T> && !requires(const T& t, msgpack::packer<msgpack::sbuffer>& pk) {
  t.msgpack_pack(pk);
}
&&requires(T& t, boost::archive::binary_oarchive& ar) {
  t.serialize(ar, 0u);
};

inline constexpr auto kArchiveFlags = boost::archive::no_header | boost::archive::no_codecvt;

}  // namespace zmanager::detail

namespace msgpack {
MSGPACK_API_VERSION_NAMESPACE(MSGPACK_DEFAULT_API_NS) {
  namespace adaptor {

  template <zmanager::detail::BoostSerializable T>
  struct pack<T> {
    template <class Stream>
    packer<Stream>& operator()(packer<Stream>& o, const T& v) const {
      std::ostringstream out;
      {
        boost::archive::binary_oarchive archive(out, zmanager::detail::kArchiveFlags);
        archive << v;
      }
      const std::string bytes = out.str();
      o.pack_ext(bytes.size(), zmanager::wire::kExtOpaque);
      o.pack_ext_body(bytes.data(), static_cast<std::uint32_t>(bytes.size()));
      return o;
    }
  };

  template <zmanager::detail::BoostSerializable T>
  struct convert<T> {
    const msgpack::object& operator()(const msgpack::object& o, T& v) const {
      if (o.type != type::EXT || o.via.ext.type() != zmanager::wire::kExtOpaque)
        throw msgpack::type_error();
      std::istringstream in(std::string(o.via.ext.data(), o.via.ext.size));
      try {
        boost::archive::binary_iarchive archive(in, zmanager::detail::kArchiveFlags);
        archive >> v;
      } catch (const boost::archive::archive_exception& e) {
        throw zmanager::TypeError(std::string("opaque value does not decode: ") + e.what());
      }
      return o;
    }
  };

  }  // namespace adaptor
}
}  // namespace msgpack
