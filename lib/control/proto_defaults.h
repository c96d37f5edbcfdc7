// lib/control/proto_defaults.h
//
// The schema's field options put to work, by reflection over any config message: unset
// fields take their (default_value) (Postfix's defaults, written in the .proto), and values
// are checked against (min_value)/(max_value) and (cidr_list). Config files, flags and
// Admin.UpdateLimits all end here, so a limit has one default and one range everywhere.
//
// Never: overrides a value that was set; knows a field by name (the options are the code).
#pragma once

#include "absl/status/status.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"

namespace sluice::control {

// Fills every unset field that has a (default_value), recursively: into singular message
// fields (created when their type holds defaults, except oneof members, which are entered
// only when set) and into every element of repeated message fields. "Unset" means:
//   - proto3 `optional` scalars: not present;
//   - other scalars: equal to the zero value ("" / 0 / false / the 0 enum);
//   - repeated fields: empty.
void ApplyDefaults(google::protobuf::Message* msg);

// Checks bounds and CIDR lists recursively. The first failure is INVALID_ARGUMENT naming the
// field's full path: "limits.max_sessions: 0 is below the minimum 1",
// "filters[1].grpc.chunk_bytes: ...", "mynetworks[0]: bad CIDR address: x". An optional
// field that is not present is not checked (ApplyDefaults gives it its default first).
absl::Status Validate(const google::protobuf::Message& msg);

// Lints the schema of `type` and every message type under it: each (default_value) parses
// for its field and is within the field's own bounds, and the options sit on fields of the
// right kind. A failure here is a bug in the .proto; a test runs this for every config type.
absl::Status CheckSchemaOptions(const google::protobuf::Descriptor* type);

}  // namespace sluice::control
