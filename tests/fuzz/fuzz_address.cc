// tests/fuzz/fuzz_address.cc
//
// ParsePath / IsValidMailbox / IsValidDomain / DomainOf on arbitrary bytes. Invariants: an
// accepted path yields a mailbox that IsValidMailbox accepts, within the RFC 5321 §4.5.3.1
// lengths, and `in` is advanced to the end or a space; an accepted mailbox's domain is a
// valid domain.
//
// Never: calls anything with side effects.
#include <string>
#include <string_view>

#include "lib/smtp/address.h"
#include "tests/fuzz/fuzz_check.h"

using namespace sluice::smtp;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t flags = data[0];
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  const bool allow_empty = flags & 1;
  const bool utf8 = flags & 2;
  const bool lenient = flags & 4;

  std::string_view in = text;
  absl::StatusOr<std::string> path = ParsePath(in, allow_empty, utf8, lenient);
  if (path.ok()) {
    FUZZ_CHECK(in.empty() || in.front() == ' ');
    FUZZ_CHECK(in.size() < text.size());
    FUZZ_CHECK(text.size() - in.size() <= 256);
    if (path->empty()) {
      FUZZ_CHECK(allow_empty);
    } else {
      FUZZ_CHECK(IsValidMailbox(*path, utf8));
      FUZZ_CHECK(path->size() <= 254);
      const size_t at = path->rfind('@');
      FUZZ_CHECK(at != std::string::npos && at <= 64);
      FUZZ_CHECK(IsValidDomain(path->substr(at + 1), utf8));
      FUZZ_CHECK(!DomainOf(*path).empty());
      // The mailbox parses again as a bracketed path, unchanged.
      std::string bracketed = "<" + *path + ">";
      std::string_view again = bracketed;
      absl::StatusOr<std::string> path2 = ParsePath(again, false, utf8, false);
      FUZZ_CHECK(path2.ok() && *path2 == *path && again.empty());
    }
  } else {
    FUZZ_CHECK(in == text);  // not advanced on error
  }

  if (IsValidMailbox(text, utf8)) {
    const std::string domain = DomainOf(text);
    FUZZ_CHECK(!domain.empty());
    FUZZ_CHECK(IsValidDomain(domain, true));
  }
  (void)IsValidDomain(text, utf8);
  return 0;
}
