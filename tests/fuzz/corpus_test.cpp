// Replays the fuzzer's corpus and every input that once crashed it (regressions/) through the
// request decoder in every build (plain, ASan+UBSan, TSan): what the fuzzer found stays fixed.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

#include "request_decoder.hpp"

namespace {

std::vector<std::filesystem::path> inputs(const char* directory) {
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(directory))
    if (entry.is_regular_file()) files.push_back(entry.path());
  return files;
}

std::vector<std::uint8_t> read(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(RequestDecoder, EverySeedParsesAndEveryCorpusInputIsDecodedOrRejectedWithATypedError) {
  auto files = inputs(ZMANAGER_FUZZ_CORPUS);
  ASSERT_GE(files.size(), 10u) << "the seed corpus is missing";
  for (const auto& file : files) {
    auto bytes = read(file);
    bool parsed = false;
    EXPECT_NO_THROW(parsed = zmanager::fuzz::decode_request(bytes.data(), bytes.size())) << file;
    // The seeds are well-formed messages (make_corpus.py); inputs the fuzzer added need not be.
    if (file.filename().string().rfind("seed_", 0) == 0) {
      EXPECT_TRUE(parsed) << file;
    }
  }
}

TEST(RequestDecoder, InputsThatOnceCrashedTheFuzzerAreRejectedWithATypedError) {
  for (const auto& file : inputs(ZMANAGER_FUZZ_REGRESSIONS)) {
    auto bytes = read(file);
    EXPECT_NO_THROW(zmanager::fuzz::decode_request(bytes.data(), bytes.size())) << file;
  }
}

TEST(RequestDecoder, TruncationsOfEverySeedAreRejectedWithATypedError) {
  for (const auto& file : inputs(ZMANAGER_FUZZ_CORPUS)) {
    auto bytes = read(file);
    for (std::size_t n = 0; n < bytes.size(); ++n)
      EXPECT_NO_THROW(zmanager::fuzz::decode_request(bytes.data(), n)) << file << " cut at " << n;
  }
}

}  // namespace
