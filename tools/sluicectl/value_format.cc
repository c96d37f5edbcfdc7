// tools/sluicectl/value_format.cc -- see value_format.h.
#include "tools/sluicectl/value_format.h"

#include <google/protobuf/util/time_util.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "tools/sluicectl/duration.h"

namespace sluice::ctl {
namespace {

bool IsUnset(const google::protobuf::Timestamp& ts) { return ts.seconds() == 0 && ts.nanos() == 0; }

}  // namespace

std::string FormatAge(const google::protobuf::Timestamp& ts, absl::Time now) {
  if (IsUnset(ts)) return "-";
  absl::Time then = absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
  int64_t seconds = absl::ToInt64Seconds(now - then);
  return FormatSeconds(seconds > 0 ? static_cast<uint64_t>(seconds) : 0);
}

std::string FormatTimestamp(const google::protobuf::Timestamp& ts) {
  if (IsUnset(ts)) return "-";
  return google::protobuf::util::TimeUtil::ToString(ts);
}

std::string FormatBytes(uint64_t bytes) {
  if (bytes < 1024) return absl::StrCat(bytes, " B");
  constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
  double value = static_cast<double>(bytes) / 1024;
  size_t unit = 0;
  while (value >= 1024 && unit + 1 < std::size(kUnits)) {
    value /= 1024;
    ++unit;
  }
  return absl::StrFormat("%.1f %s", value, kUnits[unit]);
}

std::string FormatShortList(const std::vector<std::string>& items, size_t keep) {
  if (items.empty()) return "-";
  if (items.size() <= keep) return absl::StrJoin(items, ",");
  std::vector<std::string> head(items.begin(), items.begin() + static_cast<std::ptrdiff_t>(keep));
  return absl::StrCat(absl::StrJoin(head, ","), ",+", items.size() - keep);
}

}  // namespace sluice::ctl
