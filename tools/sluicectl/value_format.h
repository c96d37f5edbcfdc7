// tools/sluicectl/value_format.h
//
// Values as the table format shows them: ages ("3m4s" since a timestamp), times (RFC 3339),
// sizes ("12.3 KiB"), lists cut short ("a@x,b@y,+3").
//
// Never: used for the JSON format (scripts get the raw proto values there).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <google/protobuf/timestamp.pb.h>

#include "absl/time/time.h"

namespace sluice::ctl {

// Time since `ts`, e.g. "3m4s"; "-" when unset; "0s" when in the future (clock skew).
std::string FormatAge(const google::protobuf::Timestamp& ts, absl::Time now);
// RFC 3339 UTC; "-" when unset.
std::string FormatTimestamp(const google::protobuf::Timestamp& ts);
// 999 B, 1.5 KiB, 12.0 MiB, ...
std::string FormatBytes(uint64_t bytes);
// The first `keep` items joined by ',', then "+N" for the rest; "-" when empty.
std::string FormatShortList(const std::vector<std::string>& items, size_t keep);

}  // namespace sluice::ctl
