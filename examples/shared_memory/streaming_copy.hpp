// A copy for frames that another core reads next: streaming (non-temporal) stores write the
// destination straight to memory, without first reading each of its cache lines in and without
// evicting what this core works on. For a 24 MiB frame, which no cache keeps, that saves a third
// of the memory traffic of a plain memcpy (read source, read destination, write destination), a
// third the consumer's reads then have to themselves. Where streaming stores are not available,
// it is memcpy.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace frames {

inline void streaming_copy(void* to, const void* from, std::size_t size) {
#if defined(__SSE2__)
  auto* out = static_cast<unsigned char*>(to);
  const auto* in = static_cast<const unsigned char*>(from);
  // Up to the destination's first 16-byte boundary, as usual; then whole 64-byte lines.
  const std::size_t head = std::min(size, (16 - reinterpret_cast<std::uintptr_t>(out) % 16) % 16);
  std::memcpy(out, in, head);
  out += head;
  in += head;
  size -= head;
  for (; size >= 64; size -= 64, in += 64, out += 64) {
    const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in));
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + 16));
    const __m128i c = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + 32));
    const __m128i d = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + 48));
    _mm_stream_si128(reinterpret_cast<__m128i*>(out), a);
    _mm_stream_si128(reinterpret_cast<__m128i*>(out + 16), b);
    _mm_stream_si128(reinterpret_cast<__m128i*>(out + 32), c);
    _mm_stream_si128(reinterpret_cast<__m128i*>(out + 48), d);
  }
  std::memcpy(out, in, size);
  // Streaming stores are weakly ordered: they must be visible before the slot is handed over.
  _mm_sfence();
#else
  std::memcpy(to, from, size);
#endif
}

}  // namespace frames
