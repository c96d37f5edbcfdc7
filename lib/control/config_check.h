// lib/control/config_check.h
//
// `--check` of the stage binaries, like `postfix check` with `postconf -n`: the config files
// and flags are read, defaulted and validated as at start-up, then the stage's own
// start-up checks run (the ones its main makes before it listens: addresses, TLS files,
// token file, filter chain, delivery route, ...), and nothing starts. Valid: the effective
// config is printed on stdout as YAML that --config loads back, exit 0. Invalid: one line
// on stderr naming the bad key (file:line, --flag or field path), exit 1.
//
//   --check       the fields that differ from the stage's defaults (postconf -n)
//   --check=all   every field, defaults included (postconf)
//
// Never: listens, connects or writes a file; prints a secret (the schema holds key and
// token file paths, not their contents).
#pragma once

#include <ostream>

#include "absl/status/status.h"
#include "google/protobuf/message.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "lib/control/flags.h"
#include "sluice/v1/config.pb.h"

namespace sluice::control {

// Whether argv asks for --check (also when the rest of the command line is bad: then the
// exit code is --check's 1).
bool CheckRequested(int argc, char** argv);

// The checks every stage shares, on its ServerConfig: the listen addresses, the admin TLS
// files and the admin token file (what StageProcess::StartControl would read).
absl::Status CheckServerConfig(const sluice::v1::ServerConfig& server);

// Each element of a list of admin addresses (filter_admin, next_hop_admin) is HOST:PORT;
// the error names `key[i]`.
absl::Status CheckHostPorts(const char* key, const google::protobuf::RepeatedPtrField<std::string>& list);

// Prints the result of a check and returns the exit code: 0 and the YAML (all fields, or
// those differing from `table`'s defaults) when `status` is OK, else 1 and the error.
int ReportCheck(const FlagTable& table, const google::protobuf::Message& config, CheckMode mode,
                const absl::Status& status, std::ostream& out, std::ostream& err);

}  // namespace sluice::control
