// tools/sluicectl/duration.h
//
// Durations of sluicectl's own flags (--timeout, drain --timeout): Go/absl style "500ms",
// "5s", "1m30s", or a plain number of seconds. And back, for tables: 6000 seconds prints as
// "1h40m". (Limit values go through lib/control's field conversions instead.)
//
// Never: accepts a negative or infinite duration.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace sluice::ctl {

// `plain_unit` is what a bare number means (absl::Seconds(1) for seconds).
absl::StatusOr<absl::Duration> ParseDuration(std::string_view text, absl::Duration plain_unit);

// Whole seconds as the shortest "5d", "1h40m", "30s" ("0s" for zero).
std::string FormatSeconds(uint64_t seconds);

}  // namespace sluice::ctl
