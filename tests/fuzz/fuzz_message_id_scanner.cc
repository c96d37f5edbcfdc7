// tests/fuzz/fuzz_message_id_scanner.cc
//
// The Message-ID scanner of every stage's SMTP session on hostile content. For any input:
// random chunk splits and byte-by-byte feeding find the same id as one call; the id is
// never longer than the bound, never holds a line end, and is empty when the content has no
// "message-id" at all.
//
// Never: calls anything with side effects.
#include <string>
#include <string_view>
#include <vector>

#include "lib/smtp/message_id_scanner.h"
#include "tests/fuzz/fuzz_check.h"

using sluice::smtp::MessageIdScanner;

namespace {

std::string Scan(const std::vector<std::string_view>& chunks) {
  MessageIdScanner s;
  for (std::string_view c : chunks) s.Feed(c);
  s.Finish();
  return s.message_id();
}

bool ContainsIgnoreCase(std::string_view s, std::string_view lower) {
  for (size_t i = 0; i + lower.size() <= s.size(); ++i) {
    size_t j = 0;
    while (j < lower.size()) {
      char c = s[i + j];
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
      if (c != lower[j]) break;
      ++j;
    }
    if (j == lower.size()) return true;
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const std::string whole = Scan({in});
  sluice::fuzz::SplitRng rng(in);
  FUZZ_CHECK(Scan(rng.Chunks(in, 17)) == whole);
  std::vector<std::string_view> bytes;
  for (size_t i = 0; i < in.size(); ++i) bytes.push_back(in.substr(i, 1));
  FUZZ_CHECK(Scan(bytes) == whole);
  FUZZ_CHECK(whole.size() <= MessageIdScanner::kMaxBytes);
  FUZZ_CHECK(whole.find('\n') == std::string::npos);
  if (!ContainsIgnoreCase(in, "message-id")) FUZZ_CHECK(whole.empty());
  return 0;
}
