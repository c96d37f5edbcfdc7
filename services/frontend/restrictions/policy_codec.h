// services/frontend/restrictions/policy_codec.h
//
// The Postfix policy delegation protocol's wire format (SMTPD_POLICY_README): a request is
// "name=value" lines ended by an empty line; the answer is the same, and what matters in it
// is "action=...". Pure functions on bytes, no I/O, so a fuzzer links only them.
//
// Never: lets a value carry a line end into the request (CR and LF become spaces: a value is
// one line); accepts an answer line longer than the caller's bound.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace sluice::frontend::restrictions {

using PolicyAttributes = std::vector<std::pair<std::string, std::string>>;

// "name=value\n" for each attribute, then "\n".
std::string EncodePolicyRequest(const PolicyAttributes& attributes);

// Reads an answer from the front of `in`. Returns the attributes once the empty line that
// ends it is there (then `consumed` is its length), an empty optional-like result with
// consumed == 0 while more input is needed, or an error for a malformed answer (a line
// without "=", or a line longer than max_line_bytes).
struct PolicyAnswer {
  bool complete = false;
  size_t consumed = 0;
  PolicyAttributes attributes;
  // The value of the first "action" attribute ("" when none).
  std::string action() const;
};
absl::StatusOr<PolicyAnswer> DecodePolicyAnswer(std::string_view in, size_t max_line_bytes);

}  // namespace sluice::frontend::restrictions
