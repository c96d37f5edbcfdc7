// tools/sluicectl/duration.h
//
// Durations as operators type them on the command line: "5s", "100ms", "5m", "1h30m", "5d",
// or a plain number meaning a given unit (seconds for --timeout, the unit in a limit's field
// name for `limits set`). And back: 6000 seconds prints as "1h40m".
//
// Never: accepts a negative, fractional or overflowing value silently.
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
