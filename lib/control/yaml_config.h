// lib/control/yaml_config.h
//
// A stage's YAML config file mapped onto its proto message (FrontendConfig, ...), strictly:
// every key must be a field of the schema, every value must convert for its field (see
// field_path.h for the conversions), and each error names the file and line:
//   frontend.yaml:12: unknown key 'max_sesions' in limits (did you mean 'max_sessions'?)
//   frontend.yaml:4: limits.max_sessions: 'many' is not a whole number
//
// Loading merges onto what `msg` already holds, so files layer (deploy/k8s/base/config/ then
// deploy/local/): a scalar written again overrides, a list written again is replaced as a
// whole, a section written again merges key by key; a key given as null (`key:` or `~`)
// clears that field. An empty file (or one with only comments) changes nothing.
//
// Never: ignores a key it does not know; reads more than the first YAML document silently
// (a second document is an error); applies defaults or bounds (proto_defaults.h does).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "google/protobuf/message.h"

namespace sluice::control {

// `source_name` is what errors call the text ("frontend.yaml", "<flags>").
absl::Status LoadYamlString(std::string_view yaml, std::string_view source_name,
                            google::protobuf::Message* msg);

// Reads the file and loads it; a file that cannot be read is NOT_FOUND (missing) or
// FAILED_PRECONDITION (other errors), naming the path.
absl::Status LoadYamlFile(const std::string& path, google::protobuf::Message* msg);

// Loads each file in order onto the same message (later files override earlier ones).
absl::Status LoadYamlFiles(const std::vector<std::string>& paths, google::protobuf::Message* msg);

}  // namespace sluice::control
