// lib/control/flags.h
//
// The command line of every service binary (DESIGN.md "CLI contract"), driven by a table:
// each flag names the config field it sets ("--max_sessions" -> "limits.max_sessions") or a
// handler for the few that build something (--milter appends a FilterConfig). The order is
// fixed: every --config file (YAML, strict) first, in the order given, then the other flags
// in command-line order, then the schema's defaults, the stage's run-time defaults (host
// name, listen addresses) and validation.
//
//   --flag=value and --flag value; '-' may stand for '_' in names (--max-sessions);
//   --config=FILE is repeatable and takes FILE,FILE; --log_level=debug|info|warn|error;
//   --help / -h: usage on stdout, and the caller exits 0;
//   --check / --check=all: validate and print the effective config (config_check.h).
//
// Never: calls exit() or prints anything but --help's usage (errors come back as a Status
// naming the flag or the file:line, for the caller to print and exit non-zero); lets a flag
// set a field its table does not name.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "lib/observe/log.h"

namespace sluice::control {

using FlagHandler = std::function<absl::Status(google::protobuf::Message* config, std::string_view value)>;

struct Flag {
  std::string name;        // without the leading "--"
  std::string value_name;  // shown in --help: "HOST:PORT", "N", "DURATION", "CIDR[,CIDR]"
  std::string help;
  // The field the value sets (field_path.h conversions; a list field is replaced by the
  // comma-separated value, or appended to when `repeatable`). Empty when `handler` is set.
  std::string field_path;
  FlagHandler handler;
  // A check of the value's form before it is applied (e.g. HOST:PORT); optional.
  std::function<absl::Status(std::string_view value)> check;
  bool repeatable = false;
  // Shown as "(default: ...)" in --help; when empty, the field's (default_value) is shown.
  std::string default_text;
};

struct FlagTable {
  std::string program;  // "sluice-frontend"; argv[0]'s base name when empty
  std::string summary;  // one paragraph for --help
  std::vector<Flag> flags;
  // Runs after the schema defaults, before validation: the defaults that depend on the
  // stage or the machine (listen addresses, host name). Optional.
  std::function<void(google::protobuf::Message* config)> finish;
};

enum class CommandLineAction {
  kRun,          // the config is complete and valid: start the service
  kExitSuccess,  // --help printed the usage: exit 0
  kCheck,        // --check: run the stage's start-up checks, print the config, exit 0/1
};

// What --check prints (config_check.h).
enum class CheckMode {
  kNonDefault,  // --check: the fields that differ from the defaults (postconf -n)
  kAll,         // --check=all: every field (postconf)
};

struct ParsedCommandLine {
  CommandLineAction action = CommandLineAction::kRun;
  std::vector<std::string> config_files;                 // as loaded, in order
  observe::Level log_level = observe::Level::kInfo;      // --log_level
  std::vector<std::string> applied_flags;                // "--max_sessions=200", in order
  CheckMode check = CheckMode::kNonDefault;              // with action kCheck
};

// Parses argv onto `config` (which should be a fresh message). On error the Status is
// INVALID_ARGUMENT naming the flag ("--max_sessions=abc: ..."), or the file and line, or
// NOT_FOUND for a missing --config file; the caller prints it and exits non-zero.
absl::StatusOr<ParsedCommandLine> ParseCommandLine(int argc, char** argv, const FlagTable& table,
                                                   google::protobuf::Message* config);
// The same, for argv[1..] given as strings (tests, sluicectl subcommands).
absl::StatusOr<ParsedCommandLine> ParseCommandLine(const std::vector<std::string>& args,
                                                   const FlagTable& table,
                                                   google::protobuf::Message* config);

// The --help text: every flag with its value form, help and default.
std::string Usage(const FlagTable& table, const google::protobuf::Descriptor* config_type);

// Every field_path of the table exists in `config_type` and no name is taken twice; each
// flag has exactly one of field_path and handler. Tests run it for each service table.
absl::Status CheckFlagTable(const FlagTable& table, const google::protobuf::Descriptor* config_type);

// A `check` for HOST:PORT values.
absl::Status CheckHostPort(std::string_view value);

}  // namespace sluice::control
