// lib/control/field_path.h
//
// One config field read or written as text, by reflection: the value conversions shared by
// the YAML loader, the command-line flags and the schema's (default_value) options, and
// dotted paths ("limits.max_sessions", "server.smtp_listen") for flags and sluicectl.
//
//   bool        true/false, yes/no, on/off, 1/0 (any case)
//   integers    decimal; a (duration) field also takes "100s", "5m", "1h30m", "250ms"
//               (absl::ParseDuration) and whole days/weeks as Postfix writes them ("5d",
//               "1w"), converted to the unit of its name ("_seconds") and rounded up
//   enums       the value name in any case, with or without the type's prefix:
//               RuleAction RULE_ACTION_REJECT is also "reject"; '-' may stand for '_'
//   strings     as written
//   repeated    a comma-separated list (elements trimmed, empty ones dropped)
//
// Never: accepts a value it cannot represent exactly (overflow, a negative unsigned, a
// fraction of an integer); creates a field the schema lacks.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"

namespace sluice::control {

// Sets the field named by a dotted path from text; intermediate messages are created. A
// repeated field is replaced by the comma-separated elements. Errors name the path.
absl::Status SetFieldFromString(google::protobuf::Message* msg, std::string_view path,
                                std::string_view value);

// Appends the comma-separated elements to the repeated field named by the path.
absl::Status AppendFieldFromString(google::protobuf::Message* msg, std::string_view path,
                                   std::string_view value);

// Resolves a dotted path to the message holding the last field and that field's
// descriptor, creating intermediate messages. Only singular message fields may be crossed.
absl::Status ResolveFieldPath(google::protobuf::Message* msg, std::string_view path,
                              google::protobuf::Message** holder,
                              const google::protobuf::FieldDescriptor** field);

// The building blocks, for one known field. `SetScalarFromString` sets a singular scalar or
// enum; `AddScalarFromString` appends one element to a repeated one. The error message has
// no field name in it (callers know where the value came from) and is InvalidArgument.
absl::Status SetScalarFromString(google::protobuf::Message* msg,
                                 const google::protobuf::FieldDescriptor* field,
                                 std::string_view value);
absl::Status AddScalarFromString(google::protobuf::Message* msg,
                                 const google::protobuf::FieldDescriptor* field,
                                 std::string_view value);
// Replaces a repeated scalar field by the comma-separated elements of `list`.
absl::Status SetRepeatedFromList(google::protobuf::Message* msg,
                                 const google::protobuf::FieldDescriptor* field,
                                 std::string_view list);

// The field's value as text in the form the setters accept: enums as their short lower-case
// name ("tempfail"), bools "true"/"false", lists comma-separated, messages in text format.
std::string FieldValueToString(const google::protobuf::Message& msg,
                               const google::protobuf::FieldDescriptor* field);

// One value as FieldValueToString writes it: element `index` of a repeated field, or the
// singular field's value when `index` is -1.
std::string ElementToString(const google::protobuf::Message& msg, const google::protobuf::FieldDescriptor* field,
                            int index);

// Lower-case enum value name without the type's prefix: RULE_ACTION_REJECT -> "reject".
std::string ShortEnumName(const google::protobuf::EnumValueDescriptor* value);

}  // namespace sluice::control
