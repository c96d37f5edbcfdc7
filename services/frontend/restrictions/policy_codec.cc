// services/frontend/restrictions/policy_codec.cc -- see policy_codec.h.
#include "services/frontend/restrictions/policy_codec.h"

#include "absl/strings/str_cat.h"

namespace sluice::frontend::restrictions {

std::string EncodePolicyRequest(const PolicyAttributes& attributes) {
  std::string out;
  for (const auto& [name, value] : attributes) {
    out.append(name).push_back('=');
    for (char c : value) out.push_back(c == '\r' || c == '\n' ? ' ' : c);
    out.push_back('\n');
  }
  out.push_back('\n');
  return out;
}

std::string PolicyAnswer::action() const {
  for (const auto& [name, value] : attributes) {
    if (name == "action") return value;
  }
  return "";
}

absl::StatusOr<PolicyAnswer> DecodePolicyAnswer(std::string_view in, size_t max_line_bytes) {
  PolicyAnswer answer;
  size_t pos = 0;
  for (;;) {
    size_t nl = in.find('\n', pos);
    if (nl == std::string_view::npos) {
      if (in.size() - pos > max_line_bytes) return absl::InvalidArgumentError("policy answer line too long");
      return PolicyAnswer{};  // need more
    }
    if (nl - pos > max_line_bytes) return absl::InvalidArgumentError("policy answer line too long");
    std::string_view line = in.substr(pos, nl - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    pos = nl + 1;
    if (line.empty()) {
      answer.complete = true;
      answer.consumed = pos;
      return answer;
    }
    size_t eq = line.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      return absl::InvalidArgumentError(absl::StrCat("malformed policy answer line: ", std::string(line.substr(0, 80))));
    }
    answer.attributes.emplace_back(std::string(line.substr(0, eq)), std::string(line.substr(eq + 1)));
  }
}

}  // namespace sluice::frontend::restrictions
