// tests/fuzz/fuzz_policy_answer.cc
//
// The policy delegation protocol's answer decoder on any bytes, whole and split in chunks as
// they would arrive: never crashes; a complete answer consumed no more than it was given and
// ends in an empty line; an answer that is complete stays the same with more bytes after it;
// re-encoding the attributes (a request's encoder writes the same format) decodes back to
// them; a line over the bound is an error, never an answer.
//
// Never: calls anything with side effects.
#include <string>
#include <string_view>

#include "services/frontend/restrictions/policy_codec.h"
#include "tests/fuzz/fuzz_check.h"

using namespace sluice::frontend::restrictions;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view raw(reinterpret_cast<const char*>(data), size);
  constexpr size_t kMaxLine = 256;
  absl::StatusOr<PolicyAnswer> whole = DecodePolicyAnswer(raw, kMaxLine);
  if (!whole.ok() || !whole->complete) {
    // Fed in growing prefixes (as reads arrive), no prefix yields an answer either.
    sluice::fuzz::SplitRng rng(raw);
    for (size_t end = 0; end < raw.size();) {
      end += 1 + rng.Next() % 64;
      if (end > raw.size()) end = raw.size();
      absl::StatusOr<PolicyAnswer> part = DecodePolicyAnswer(raw.substr(0, end), kMaxLine);
      FUZZ_CHECK(!part.ok() || !part->complete);
    }
    return 0;
  }
  FUZZ_CHECK(whole->consumed <= raw.size());
  FUZZ_CHECK(whole->consumed >= 1 && raw[whole->consumed - 1] == '\n');
  // Bytes after a complete answer change nothing about it.
  std::string longer(raw);
  longer.append("junk=after\n\n");
  absl::StatusOr<PolicyAnswer> again = DecodePolicyAnswer(longer, kMaxLine);
  FUZZ_CHECK(again.ok() && again->complete && again->consumed == whole->consumed);
  FUZZ_CHECK(again->attributes == whole->attributes);
  // The encoder writes what the decoder reads (values without line ends are unchanged).
  bool clean = true;
  for (const auto& [name, value] : whole->attributes) {
    clean = clean && value.find('\r') == std::string::npos && name.find('=') == std::string::npos;
  }
  if (clean) {
    const std::string encoded = EncodePolicyRequest(whole->attributes);
    absl::StatusOr<PolicyAnswer> round = DecodePolicyAnswer(encoded, encoded.size() + 1);
    FUZZ_CHECK(round.ok() && round->complete && round->consumed == encoded.size());
    FUZZ_CHECK(round->attributes == whole->attributes);
  }
  return 0;
}
