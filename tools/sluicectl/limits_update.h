// tools/sluicectl/limits_update.h
//
// `limits set KEY=VALUE...` into an UpdateLimitsRequest: KEY is a Limits field name, VALUE
// is converted exactly as the stages convert config files and flags (lib/control/field_path:
// integers, "5m"/"1h30m"/"2d" where the field has the (duration) option and a plain number
// in the unit of the field's name, comma-separated lists, true/false) and checked against the
// schema's (min_value)/(max_value) and (cidr_list) (lib/control/proto_defaults), so the
// client refuses what the server would. The update_mask names exactly the fields given, so
// every other limit stays as it is.
//
// Never: sends a field the operator did not name; accepts an unknown key (the error names it).
#pragma once

#include <string>
#include <vector>

#include <google/protobuf/descriptor.h>

#include "absl/status/statusor.h"
#include "sluice/v1/admin.pb.h"
#include "sluice/v1/limits.pb.h"

namespace sluice::ctl {

// INVALID_ARGUMENT (exit 2) names the key and the problem.
absl::StatusOr<sluice::v1::UpdateLimitsRequest> ParseLimitAssignments(const std::vector<std::string>& assignments);

// Every Limits field, in field-number order.
std::vector<const google::protobuf::FieldDescriptor*> LimitFields();

// One field's value as shown and compared: "100", "127.0.0.0/8,::1/128", durations as
// "100 (1m40s)"; "-" when an optional field is unset.
std::string LimitValueText(const sluice::v1::Limits& limits, const google::protobuf::FieldDescriptor* field);

// The names of the fields whose value differs between any two of `limits`.
std::vector<std::string> DriftFields(const std::vector<const sluice::v1::Limits*>& limits);

}  // namespace sluice::ctl
