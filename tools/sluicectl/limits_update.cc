// tools/sluicectl/limits_update.cc -- see limits_update.h.
#include "tools/sluicectl/limits_update.h"

#include <algorithm>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "lib/control/field_path.h"
#include "lib/control/proto_defaults.h"
#include "sluice/v1/options.pb.h"
#include "tools/sluicectl/duration.h"

namespace sluice::ctl {
namespace {

using google::protobuf::FieldDescriptor;
using sluice::v1::Limits;

absl::Status Invalid(const std::string& key, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("limit ", key, ": ", why));
}

// Shown with a readable duration beside the number when it counts seconds: "6000 (1h40m)".
bool CountsSeconds(const FieldDescriptor* f) {
  const std::string& name = f->name();
  return f->options().GetExtension(sluice::v1::duration) && name.size() > 8 &&
         name.compare(name.size() - 8, 8, "_seconds") == 0;
}

}  // namespace

absl::StatusOr<sluice::v1::UpdateLimitsRequest> ParseLimitAssignments(const std::vector<std::string>& assignments) {
  sluice::v1::UpdateLimitsRequest request;
  Limits& limits = *request.mutable_limits();
  std::set<std::string> seen;
  for (const std::string& assignment : assignments) {
    auto eq = assignment.find('=');
    if (eq == std::string::npos || eq == 0) {
      return absl::InvalidArgumentError(absl::StrCat("expected KEY=VALUE, got \"", assignment, "\""));
    }
    std::string key = assignment.substr(0, eq);
    std::string value = assignment.substr(eq + 1);
    const FieldDescriptor* f = Limits::descriptor()->FindFieldByName(key);
    if (f == nullptr) return absl::InvalidArgumentError(absl::StrCat("unknown limit key \"", key, "\""));
    if (!seen.insert(key).second) return absl::InvalidArgumentError(absl::StrCat("limit ", key, " given twice"));
    if (!f->is_repeated() && value.empty()) return Invalid(key, "needs a value");
    // The conversions the stages use for config files and flags: one meaning for "5m" everywhere.
    absl::Status set = sluice::control::SetFieldFromString(&limits, key, value);
    if (!set.ok()) return absl::InvalidArgumentError(absl::StrCat("limit ", set.message()));  // names the key
    request.mutable_update_mask()->add_paths(key);
  }
  // The schema's bounds and CIDR checks, on the fields given (the others are not present).
  absl::Status valid = sluice::control::Validate(limits);
  if (!valid.ok()) return absl::InvalidArgumentError(absl::StrCat("limit ", valid.message()));
  return request;
}

std::vector<const FieldDescriptor*> LimitFields() {
  std::vector<const FieldDescriptor*> fields;
  const auto* d = Limits::descriptor();
  for (int i = 0; i < d->field_count(); ++i) fields.push_back(d->field(i));
  std::sort(fields.begin(), fields.end(),
            [](const FieldDescriptor* a, const FieldDescriptor* b) { return a->number() < b->number(); });
  return fields;
}

std::string LimitValueText(const Limits& limits, const FieldDescriptor* f) {
  const auto* r = limits.GetReflection();
  if (f->is_repeated() && r->FieldSize(limits, f) == 0) return "(none)";
  if (f->has_presence() && !r->HasField(limits, f)) return "-";
  std::string text = sluice::control::FieldValueToString(limits, f);
  uint64_t seconds = 0;
  if (CountsSeconds(f) && absl::SimpleAtoi(text, &seconds) && seconds >= 60) {
    absl::StrAppend(&text, " (", FormatSeconds(seconds), ")");
  }
  return text;
}

std::vector<std::string> DriftFields(const std::vector<const Limits*>& limits) {
  std::vector<std::string> drift;
  if (limits.size() < 2) return drift;
  for (const FieldDescriptor* f : LimitFields()) {
    const std::string first = LimitValueText(*limits.front(), f);
    for (size_t i = 1; i < limits.size(); ++i) {
      if (LimitValueText(*limits[i], f) != first) {
        drift.push_back(f->name());
        break;
      }
    }
  }
  return drift;
}

}  // namespace sluice::ctl
