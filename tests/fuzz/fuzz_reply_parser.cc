// tests/fuzz/fuzz_reply_parser.cc
//
// ParseReply on an arbitrary stream of replies. Invariants: reading the stream from a
// growing buffer in random chunk splits gives the same replies (and the same error) as
// reading it whole; a complete reply's lines hold no CR, LF or NUL, its code is 200..559;
// its formatted wire form parses back to the same reply.
//
// Never: calls anything with side effects.
#include <string>
#include <string_view>
#include <vector>

#include "lib/smtp/reply_parser.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/lib/smtp/codec_drivers.h"

using namespace sluice::smtp;
using sluice::smtp::test_drivers::ReadReplies;

namespace {

constexpr size_t kMaxLine = 512;
constexpr size_t kMaxLines = 20;

bool SameReply(const Reply& a, const Reply& b) {
  return a.code == b.code && a.enhanced == b.enhanced && a.lines == b.lines;
}

void CheckReply(const Reply& r) {
  FUZZ_CHECK(r.code >= 200 && r.code <= 559);
  FUZZ_CHECK(!r.lines.empty() && r.lines.size() <= kMaxLines);
  FUZZ_CHECK(r.enhanced.empty() || (IsEnhancedCode(r.enhanced) && r.enhanced[0] == '0' + r.code / 100));
  for (const std::string& line : r.lines) {
    FUZZ_CHECK(line.find_first_of(std::string_view("\r\n\0", 3)) == std::string::npos);
  }
  // Formatting may add the enhanced code to lines that lacked it: allow for that length.
  const std::string wire = r.Format();
  Reply again;
  const ReplyParseResult res = ParseReply(wire, again, kMaxLine + 16, kMaxLines);
  FUZZ_CHECK(res.status == ReplyStatus::kComplete);
  FUZZ_CHECK(res.consumed == wire.size());
  FUZZ_CHECK(SameReply(again, r));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  sluice::fuzz::SplitRng rng(in);
  const std::vector<std::string> whole = ReadReplies({in}, kMaxLine, kMaxLines);
  for (const std::string& r : whole) FUZZ_CHECK(r != "<BROKEN>");
  FUZZ_CHECK(ReadReplies(rng.Chunks(in, 1 + rng.Next() % 64), kMaxLine, kMaxLines) == whole);
  FUZZ_CHECK(ReadReplies(rng.Chunks(in, 2), kMaxLine, kMaxLines) == whole);

  // Every complete reply in the stream, on its own.
  for (std::string_view rest = in;;) {
    Reply r;
    const ReplyParseResult res = ParseReply(rest, r, kMaxLine, kMaxLines);
    if (res.status != ReplyStatus::kComplete) break;
    CheckReply(r);
    rest.remove_prefix(res.consumed);
  }
  return 0;
}
