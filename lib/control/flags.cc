// lib/control/flags.cc -- see flags.h.
#include "lib/control/flags.h"

#include <algorithm>
#include <iostream>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "lib/control/field_path.h"
#include "lib/control/proto_defaults.h"
#include "lib/control/yaml_config.h"
#include "lib/net/host_port.h"
#include "lib/status/status_macros.h"
#include "sluice/v1/options.pb.h"

namespace sluice::control {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

absl::string_view AV(std::string_view s) { return absl::string_view(s.data(), s.size()); }

// The flags ParseCommandLine handles itself, whatever the table.
const Flag& ConfigFlag() {
  static const Flag flag{"config", "FILE[,FILE]",
                         "YAML config file(s), loaded in order before every other flag; a later "
                         "file overrides an earlier one. Repeatable.",
                         "", nullptr, nullptr, true, ""};
  return flag;
}
const Flag& LogLevelFlag() {
  static const Flag flag{"log_level", "debug|info|warn|error", "Lowest level of log lines written.",
                         "", nullptr, nullptr, false, "info"};
  return flag;
}

const FieldDescriptor* FieldByPath(const Descriptor* type, std::string_view path) {
  const FieldDescriptor* f = nullptr;
  for (absl::string_view part : absl::StrSplit(AV(path), '.')) {
    if (type == nullptr) return nullptr;
    f = type->FindFieldByName(std::string(part));
    if (f == nullptr) return nullptr;
    type = (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE && !f->is_repeated())
               ? f->message_type()
               : nullptr;
  }
  return f;
}

std::string Normalize(std::string_view name) {
  std::string out(name);
  std::replace(out.begin(), out.end(), '-', '_');
  return out;
}

absl::StatusOr<observe::Level> ParseLevel(std::string_view text) {
  std::string t = absl::AsciiStrToLower(AV(text));
  if (t == "debug") return observe::Level::kDebug;
  if (t == "info") return observe::Level::kInfo;
  if (t == "warn" || t == "warning") return observe::Level::kWarn;
  if (t == "error") return observe::Level::kError;
  return absl::InvalidArgumentError(
      absl::StrCat("--log_level=", AV(text), ": expected debug, info, warn or error"));
}

std::string ProgramName(std::string_view argv0) {
  auto slash = argv0.rfind('/');
  return std::string(slash == std::string_view::npos ? argv0 : argv0.substr(slash + 1));
}

// Appends `text` word-wrapped to 90 columns, each line indented by `indent`.
void AppendWrapped(std::string& out, std::string_view text, std::string_view indent) {
  constexpr size_t kWidth = 90;
  size_t column = 0;
  for (absl::string_view word : absl::StrSplit(AV(text), ' ', absl::SkipEmpty())) {
    if (column > 0 && column + 1 + word.size() > kWidth) {
      out.push_back('\n');
      column = 0;
    }
    if (column == 0) {
      out.append(indent.data(), indent.size());
      column = indent.size();
    } else {
      out.push_back(' ');
      ++column;
    }
    out.append(word.data(), word.size());
    column += word.size();
  }
  out.push_back('\n');
}

void AppendFlagUsage(std::string& out, const Flag& flag, const Descriptor* type) {
  absl::StrAppend(&out, "  --", flag.name, "=", flag.value_name, "\n");
  std::string text = flag.help;
  std::string shown = flag.default_text;
  if (shown.empty() && !flag.field_path.empty() && type != nullptr) {
    if (const FieldDescriptor* f = FieldByPath(type, flag.field_path)) {
      shown = f->options().GetExtension(sluice::v1::default_value);
    }
  }
  if (!shown.empty()) absl::StrAppend(&text, " (default: ", shown, ")");
  if (flag.repeatable && flag.name != "config") absl::StrAppend(&text, " Repeatable.");
  AppendWrapped(out, text, "      ");
}

// After Validate failed: name the flag that set the field, if one did.
absl::Status Attribute(const absl::Status& error, const std::vector<std::pair<const Flag*, std::string>>& applied,
                       const std::vector<std::string>& config_files) {
  std::string text(error.message());
  std::string field = text.substr(0, text.find(':'));
  field = field.substr(0, field.find('['));
  for (auto it = applied.rbegin(); it != applied.rend(); ++it) {
    if (!it->first->field_path.empty() && it->first->field_path == field) {
      return absl::InvalidArgumentError(absl::StrCat("--", it->first->name, "=", it->second, ": ", text));
    }
  }
  if (!config_files.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(text, " (in ", absl::StrJoin(config_files, ", "), ")"));
  }
  return error;
}

}  // namespace

absl::Status CheckHostPort(std::string_view value) { return net::ParseHostPort(value).status(); }

std::string Usage(const FlagTable& table, const Descriptor* config_type) {
  std::string out = absl::StrCat("Usage: ", table.program.empty() ? "sluice" : table.program,
                                 " [--config=FILE]... [--FLAG=VALUE]...\n\n");
  if (!table.summary.empty()) {
    AppendWrapped(out, table.summary, "");
    out.push_back('\n');
  }
  absl::StrAppend(&out, "Flags override the config file; --FLAG VALUE works as well.\n\n");
  AppendFlagUsage(out, ConfigFlag(), nullptr);
  for (const Flag& flag : table.flags) AppendFlagUsage(out, flag, config_type);
  AppendFlagUsage(out, LogLevelFlag(), nullptr);
  absl::StrAppend(&out, "  --check, --check=all\n");
  AppendWrapped(out,
                "Validate the config files and flags as at start-up (the stage's own start-up checks "
                "included), start nothing, and print the effective config as YAML that --config reads "
                "back: --check prints the fields that differ from the defaults (as postconf -n), "
                "--check=all every field (as postconf). Exit 0 when valid; 1, naming the bad key, when not.",
                "      ");
  absl::StrAppend(&out, "  --help, -h\n      Print this text and exit.\n");
  return out;
}

absl::Status CheckFlagTable(const FlagTable& table, const Descriptor* config_type) {
  std::set<std::string> names = {"config", "log_level", "help", "check"};
  for (const Flag& flag : table.flags) {
    if (!names.insert(flag.name).second) {
      return absl::InternalError(absl::StrCat("flag --", flag.name, " is defined twice"));
    }
    if (flag.field_path.empty() == (flag.handler == nullptr)) {
      return absl::InternalError(absl::StrCat("flag --", flag.name, " needs a field path or a handler"));
    }
    if (flag.field_path.empty()) continue;
    const FieldDescriptor* f = FieldByPath(config_type, flag.field_path);
    if (f == nullptr || f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      return absl::InternalError(absl::StrCat("flag --", flag.name, ": ", flag.field_path,
                                              " is not a value field of ", config_type->name()));
    }
    if (flag.repeatable && !f->is_repeated()) {
      return absl::InternalError(absl::StrCat("flag --", flag.name, " is repeatable but ",
                                              flag.field_path, " is not a list"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<ParsedCommandLine> ParseCommandLine(int argc, char** argv, const FlagTable& table,
                                                   Message* config) {
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) args.emplace_back(argv[i]);
  FlagTable named = table;
  if (named.program.empty()) named.program = ProgramName(argc > 0 ? argv[0] : "sluice");
  return ParseCommandLine(args, named, config);
}

absl::StatusOr<ParsedCommandLine> ParseCommandLine(const std::vector<std::string>& args,
                                                   const FlagTable& table, Message* config) {
  SLUICE_RETURN_IF_ERROR(CheckFlagTable(table, config->GetDescriptor()));
  ParsedCommandLine result;
  for (const std::string& arg : args) {
    if (arg == "--help" || arg == "-h" || arg == "-help") {
      std::cout << Usage(table, config->GetDescriptor()) << std::flush;
      result.action = CommandLineAction::kExitSuccess;
      return result;
    }
  }

  // Pass 1: split the arguments into flags and values, and find every --config.
  std::vector<std::pair<const Flag*, std::string>> pending;
  std::set<std::string> given;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg.size() < 3 || arg.compare(0, 2, "--") != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("unexpected argument '", arg, "' (flags are --NAME=VALUE; see --help)"));
    }
    std::string name;
    std::string value;
    if (arg == "--check") {
      result.action = CommandLineAction::kCheck;
      continue;
    }
    if (auto eq = arg.find('='); eq != std::string::npos) {
      name = Normalize(std::string_view(arg).substr(2, eq - 2));
      value = arg.substr(eq + 1);
    } else {
      name = Normalize(std::string_view(arg).substr(2));
      if (i + 1 >= args.size() || args[i + 1].compare(0, 2, "--") == 0) {
        return absl::InvalidArgumentError(absl::StrCat("--", name, " needs a value (--", name, "=VALUE)"));
      }
      value = args[++i];
    }
    if (name == "config") {
      const size_t before = result.config_files.size();
      for (absl::string_view file : absl::StrSplit(value, ',', absl::SkipWhitespace())) {
        result.config_files.emplace_back(absl::StripAsciiWhitespace(file));
      }
      if (result.config_files.size() == before) return absl::InvalidArgumentError("--config needs a file name");
      continue;
    }
    if (name == "log_level") {
      SLUICE_ASSIGN_OR_RETURN(result.log_level, ParseLevel(value));
      continue;
    }
    if (name == "check") {
      if (value == "all") {
        result.check = CheckMode::kAll;
      } else if (value == "non-default" || value == "non_default") {
        result.check = CheckMode::kNonDefault;
      } else {
        return absl::InvalidArgumentError(absl::StrCat("--check=", value, ": expected --check or --check=all"));
      }
      result.action = CommandLineAction::kCheck;
      continue;
    }
    auto flag = std::find_if(table.flags.begin(), table.flags.end(),
                             [&](const Flag& f) { return f.name == name; });
    if (flag == table.flags.end()) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name, " (see --help)"));
    }
    if (!given.insert(name).second && !flag->repeatable) {
      return absl::InvalidArgumentError(absl::StrCat("--", name, " is given more than once"));
    }
    pending.emplace_back(&*flag, value);
  }

  // Pass 2: the files, then the flags over them, in order.
  SLUICE_RETURN_IF_ERROR(LoadYamlFiles(result.config_files, config));
  for (const auto& [flag, value] : pending) {
    absl::Status s = flag->check ? flag->check(value) : absl::OkStatus();
    if (s.ok()) {
      if (flag->handler) {
        s = flag->handler(config, value);
      } else if (flag->repeatable) {
        s = AppendFieldFromString(config, flag->field_path, value);
      } else {
        s = SetFieldFromString(config, flag->field_path, value);
      }
    }
    if (!s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--", flag->name, "=", value, ": ", s.message()));
    }
    result.applied_flags.push_back(absl::StrCat("--", flag->name, "=", value));
  }

  ApplyDefaults(config);
  if (table.finish) table.finish(config);
  if (absl::Status s = Validate(*config); !s.ok()) return Attribute(s, pending, result.config_files);
  return result;
}

}  // namespace sluice::control
