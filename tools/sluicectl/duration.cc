// tools/sluicectl/duration.cc -- see duration.h.
#include "tools/sluicectl/duration.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace sluice::ctl {

absl::StatusOr<absl::Duration> ParseDuration(std::string_view text, absl::Duration plain_unit) {
  const absl::string_view t(text.data(), text.size());
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("bad duration \"", t, "\": ", why));
  };
  if (t.empty()) return bad("empty");
  if (std::all_of(t.begin(), t.end(), [](char c) { return absl::ascii_isdigit(static_cast<unsigned char>(c)); })) {
    int64_t n = 0;
    if (!absl::SimpleAtoi(t, &n)) return bad("too large");
    return plain_unit * n;
  }
  absl::Duration d;
  if (!absl::ParseDuration(t, &d)) return bad("expected e.g. 500ms, 5s, 2m, 1h30m");
  if (d < absl::ZeroDuration()) return bad("negative");
  if (d == absl::InfiniteDuration()) return bad("infinite");
  return d;
}

std::string FormatSeconds(uint64_t seconds) {
  if (seconds == 0) return "0s";
  std::string out;
  constexpr std::pair<uint64_t, const char*> kParts[] = {{86400, "d"}, {3600, "h"}, {60, "m"}, {1, "s"}};
  for (const auto& [length, suffix] : kParts) {
    if (seconds >= length) {
      absl::StrAppend(&out, seconds / length, suffix);
      seconds %= length;
    }
  }
  return out;
}

}  // namespace sluice::ctl
