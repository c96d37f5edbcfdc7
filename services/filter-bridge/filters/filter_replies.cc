// services/filter-bridge/filters/filter_replies.cc -- see filter_replies.h.
#include "services/filter-bridge/filters/filter_replies.h"

#include <string>

namespace sluice::filter_bridge::filter_replies {


smtp::Reply VerdictReply(uint32_t code, std::string_view enhanced, std::string_view text,
                         const smtp::Reply& fallback) {
  const uint32_t klass = static_cast<uint32_t>(fallback.code / 100);
  smtp::Reply r = fallback;
  if (code != 0) {
    if (code / 100 != klass || code % 100 > 59) return fallback;
    r.code = static_cast<int>(code);
  }
  if (!enhanced.empty() && smtp::IsEnhancedCode(enhanced) &&
      static_cast<uint32_t>(enhanced[0] - '0') == klass) {
    r.enhanced = std::string(enhanced);
  }
  if (!text.empty()) r.lines = {std::string(text)};
  return r;
}

absl::Status ValidateVerdictReply(uint32_t code, std::string_view enhanced, bool permanent) {
  const uint32_t klass = permanent ? 5 : 4;
  if (code != 0 && (code / 100 != klass || code % 100 > 59)) {
    return absl::InvalidArgumentError("code " + std::to_string(code) + " is not a " +
                                      std::to_string(klass) + "xx reply code");
  }
  if (!enhanced.empty()) {
    if (!smtp::IsEnhancedCode(enhanced) || static_cast<uint32_t>(enhanced[0] - '0') != klass) {
      return absl::InvalidArgumentError("enhanced_code \"" + std::string(enhanced) +
                                        "\" is not a " + std::to_string(klass) +
                                        ".x.y enhanced status code");
    }
  }
  return absl::OkStatus();
}

}  // namespace sluice::filter_bridge::filter_replies
