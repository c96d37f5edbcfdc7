// tests/fuzz/fuzz_check.h
//
// What every fuzz target shares: FUZZ_CHECK (an invariant that must hold for any input;
// a failure aborts so libFuzzer keeps the input) and a small deterministic generator for
// chunk splits derived from the input itself (same input, same splits: reproducible).
//
// Never: used outside tests/fuzz; depends on anything but the standard library.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

#define FUZZ_CHECK(cond)                                                              \
  do {                                                                                \
    if (!(cond)) {                                                                    \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                   \
    }                                                                                 \
  } while (0)

namespace sluice::fuzz {

// xorshift64* seeded with an FNV-1a hash of the input.
class SplitRng {
 public:
  explicit SplitRng(std::string_view input) {
    uint64_t h = 1469598103934665603ull;
    for (char c : input) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
    state_ = h | 1;
  }
  uint64_t Next() {
    state_ ^= state_ >> 12;
    state_ ^= state_ << 25;
    state_ ^= state_ >> 27;
    return state_ * 2685821657736338717ull;
  }
  // Cuts `s` into chunks of 1..max_chunk bytes (an empty chunk now and then, too).
  std::vector<std::string_view> Chunks(std::string_view s, size_t max_chunk) {
    std::vector<std::string_view> out;
    size_t pos = 0;
    while (pos < s.size()) {
      const size_t len = Next() % (max_chunk + 1);  // 0 gives an empty chunk
      out.push_back(s.substr(pos, len));
      pos += len;
    }
    return out;
  }

 private:
  uint64_t state_;
};

}  // namespace sluice::fuzz
