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

#include "lib/smtp/line_splitter.h"
#include "tests/fuzz/fuzz_check.h"

using namespace sluice::smtp;

namespace {

std::vector<std::string> ReadLoop(const std::vector<std::string_view>& chunks, size_t max_len) {
  std::vector<std::string> lines;
  std::string buf;
  bool skipping = false;
  for (std::string_view chunk : chunks) {
    buf.append(chunk);
    for (;;) {
      if (skipping) {
        bool found = false;
        const size_t n = SkipToLineEnd(buf, found);
        FUZZ_CHECK(n <= buf.size());
        if (found) FUZZ_CHECK(n >= 2 && buf.compare(n - 2, 2, "\r\n") == 0);
        buf.erase(0, n);
        if (!found) {
          FUZZ_CHECK(buf.empty() || buf == "\r");
          break;
        }
        skipping = false;
        continue;
      }
      const LineResult r = NextLine(buf, max_len);
      if (r.status == LineStatus::kNeedMore) {
        FUZZ_CHECK(buf.size() < max_len);
        break;
      }
      if (r.status == LineStatus::kTooLong) {
        FUZZ_CHECK(buf.size() >= max_len);
        lines.push_back("<TOO LONG>");
        skipping = true;
        continue;
      }
      FUZZ_CHECK(r.consumed == r.line.size() + 2 && r.consumed <= max_len);
      FUZZ_CHECK(r.line.find("\r\n") == std::string_view::npos);
      FUZZ_CHECK(r.line.data() == buf.data());
      lines.emplace_back(r.line);
      buf.erase(0, r.consumed);
    }
  }
  if (!buf.empty() && !skipping) lines.push_back("<REST " + buf + ">");
  return lines;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t max_len = 2 + data[0] % 64;  // short limits reach the over-long paths
  const std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  sluice::fuzz::SplitRng rng(in);
  const std::vector<std::string> whole = ReadLoop({in}, max_len);
  FUZZ_CHECK(ReadLoop(rng.Chunks(in, 1 + rng.Next() % 80), max_len) == whole);
  FUZZ_CHECK(ReadLoop(rng.Chunks(in, 1), max_len) == whole);
  return 0;
}
