// tests/fuzz/fuzz_line_splitter.cc
//
// NextLine / SkipToLineEnd on an arbitrary pipelined batch. Invariants: a line never holds
// CRLF and fits max_len with its CRLF; reading from a growing buffer in random chunk splits
// (discarding over-long lines up to their CRLF) gives the same lines as reading it whole.
//
// Never: calls anything with side effects.
#include <string>
#include <string_view>
#include <vector>

#include "tests/fuzz/fuzz_check.h"
#include "tests/lib/smtp/codec_drivers.h"

namespace {

using sluice::smtp::test_drivers::ReadLines;

// The loop reports its own broken bookkeeping as a marker line.
void CheckLines(const std::vector<std::string>& lines) {
  for (const std::string& line : lines) FUZZ_CHECK(line != sluice::smtp::test_drivers::kBrokenLine);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t max_len = 2 + data[0] % 64;  // short limits reach the over-long paths
  const std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  sluice::fuzz::SplitRng rng(in);
  const std::vector<std::string> whole = ReadLines({in}, max_len);
  CheckLines(whole);
  FUZZ_CHECK(ReadLines(rng.Chunks(in, 1 + rng.Next() % 80), max_len) == whole);
  FUZZ_CHECK(ReadLines(rng.Chunks(in, 1), max_len) == whole);
  return 0;
}
