// lib/control/yaml_writer.h
//
// A config message written as the YAML the loader reads back (yaml_config.h): field names as
// keys in schema order, nested messages as indented sections, enums by their short name
// ("tempfail"), lists of scalars in flow style ([a, "b c"]), lists of messages as block
// sequences, strings quoted only when YAML would read them otherwise (empty, "null", a
// leading special character, " #", a trailing ':'). With `defaults` only the fields whose
// value differs from it are written, and a section only when something inside it differs
// (postconf -n); the elements of a list of messages are compared with a fresh element
// holding the schema defaults. Without `defaults` every field is written (postconf).
//
// Never: writes YAML that loads back to another value; writes a oneof member that is not
// set; holds or prints anything but what is in the message.
#pragma once

#include <string>

#include "google/protobuf/message.h"

namespace sluice::control {

std::string ConfigToYaml(const google::protobuf::Message& config, const google::protobuf::Message* defaults);

}  // namespace sluice::control
