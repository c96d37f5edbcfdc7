// tests/fuzz/fuzz_xtext.cc
//
// xtext round trips: any bytes encode to pure xtext that decodes back to them; whatever
// decodes, re-encoded canonically, decodes to the same bytes again.
//
// Never: calls anything with side effects.
#include <string>
#include <string_view>

#include "lib/smtp/xtext.h"
#include "tests/fuzz/fuzz_check.h"

using namespace sluice::smtp;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view raw(reinterpret_cast<const char*>(data), size);

  const std::string encoded = XtextEncode(raw);
  for (char c : encoded) FUZZ_CHECK(c >= 33 && c <= 126 && c != '=');
  FUZZ_CHECK(encoded.size() >= raw.size() && encoded.size() <= 3 * raw.size());
  absl::StatusOr<std::string> decoded = XtextDecode(encoded);
  FUZZ_CHECK(decoded.ok());
  FUZZ_CHECK(*decoded == raw);

  absl::StatusOr<std::string> as_xtext = XtextDecode(raw);
  if (as_xtext.ok()) {
    FUZZ_CHECK(as_xtext->size() <= raw.size());
    const std::string canonical = XtextEncode(*as_xtext);
    FUZZ_CHECK(canonical.size() <= raw.size());  // escapes only what must be escaped
    absl::StatusOr<std::string> again = XtextDecode(canonical);
    FUZZ_CHECK(again.ok() && *again == *as_xtext);
  }
  return 0;
}
