// tools/sluicectl/duration.cc -- see duration.h.
#include "tools/sluicectl/duration.h"

#include <limits>

#include "absl/strings/str_cat.h"

namespace sluice::ctl {
namespace {

struct Unit {
  std::string_view suffix;
  absl::Duration length;
};

// Longest suffix first so "ms" is not read as "m" followed by garbage.
constexpr Unit kUnits[] = {
    {"ms", absl::Milliseconds(1)}, {"w", absl::Hours(24 * 7)}, {"d", absl::Hours(24)},
    {"h", absl::Hours(1)},         {"m", absl::Minutes(1)},    {"s", absl::Seconds(1)},
};

absl::Status Bad(std::string_view text, std::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("bad duration \"", std::string(text), "\": ", std::string(why)));
}

}  // namespace

absl::StatusOr<absl::Duration> ParseDuration(std::string_view text, absl::Duration plain_unit) {
  if (text.empty()) return Bad(text, "empty");
  absl::Duration total = absl::ZeroDuration();
  size_t i = 0;
  bool plain = true;
  while (i < text.size()) {
    if (text[i] < '0' || text[i] > '9') return Bad(text, "expected a number");
    uint64_t n = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      if (n > (std::numeric_limits<uint64_t>::max() - 9) / 10) return Bad(text, "too large");
      n = n * 10 + static_cast<uint64_t>(text[i] - '0');
      ++i;
    }
    if (n > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return Bad(text, "too large");
    absl::Duration unit = plain_unit;
    if (i < text.size()) {
      plain = false;
      const Unit* found = nullptr;
      for (const Unit& u : kUnits) {
        if (text.substr(i, u.suffix.size()) == u.suffix) {
          found = &u;
          break;
        }
      }
      if (found == nullptr) return Bad(text, "unit must be one of ms, s, m, h, d, w");
      unit = found->length;
      i += found->suffix.size();
    } else if (!plain) {
      return Bad(text, "a number after a unit needs its own unit");
    }
    total += unit * static_cast<int64_t>(n);
    if (total == absl::InfiniteDuration()) return Bad(text, "too large");
  }
  return total;
}

std::string FormatSeconds(uint64_t seconds) {
  if (seconds == 0) return "0s";
  std::string out;
  constexpr std::pair<uint64_t, const char*> kParts[] = {
      {86400, "d"}, {3600, "h"}, {60, "m"}, {1, "s"}};
  for (const auto& [length, suffix] : kParts) {
    if (seconds >= length) {
      absl::StrAppend(&out, seconds / length, suffix);
      seconds %= length;
    }
  }
  return out;
}

}  // namespace sluice::ctl
