// libFuzzer entry point: scripts/test runs it on a fixed set of inputs from the corpus in corpus/;
// `scripts/test --fuzz SECONDS` runs it longer by hand.
#include "request_decoder.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  zmanager::fuzz::decode_request(data, size);
  return 0;  // libFuzzer's convention: 0 keeps the input eligible for the corpus
}
