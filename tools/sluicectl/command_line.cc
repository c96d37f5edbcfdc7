// tools/sluicectl/command_line.cc -- see command_line.h.
#include "tools/sluicectl/command_line.h"

#include <algorithm>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "lib/net/host_port.h"
#include "tools/sluicectl/duration.h"

namespace sluice::ctl {
namespace {

struct CommandSpec {
  Command command;
  const char* group;  // "" for single-word commands
  const char* name;
  const char* usage;  // arguments and flags, for --help
  size_t min_args;
  size_t max_args;  // SIZE_MAX: no upper bound
  std::vector<std::string_view> flags;
  const char* summary;
};

constexpr size_t kMany = SIZE_MAX;

const std::vector<CommandSpec>& Specs() {
  static const std::vector<CommandSpec> specs = {
      {Command::kStatus, "", "status", "", 0, 0, {}, "state and load of every replica"},
      {Command::kSessions, "", "sessions", "[--stage=STAGE] [--client=ADDR]", 0, 0, {"client"},
       "live sessions, labelled by replica"},
      {Command::kSession, "", "session", "ID", 1, 1, {},
       "one session's record, and where it is live at each stage"},
      {Command::kKill, "", "kill", "ID", 1, 1, {},
       "end a live session wherever it is (its client gets 421 4.7.0)"},
      {Command::kLimitsGet, "limits", "get", "", 0, 0, {},
       "limits in force; with several replicas, a column each and a drift marker"},
      {Command::kLimitsSet, "limits", "set", "KEY=VALUE [KEY=VALUE...]", 1, kMany, {},
       "change limits live on every replica addressed"},
      {Command::kDrain, "", "drain", "[--timeout=DURATION] [--handoff]", 0, 0, {"timeout", "handoff"},
       "stop accepting sessions; in-flight work may take DURATION; --handoff (reinject): then hand the "
       "queue to the replica's handoff_peers, staying drained until resume"},
      {Command::kResume, "", "resume", "", 0, 0, {}, "accept sessions again after drain"},
      {Command::kQueueList, "queue", "list", "[--state=STATE] [--sender=TEXT] [--recipient=TEXT]",
       0, 0, {"state", "sender", "recipient"}, "queued messages (reinject)"},
      {Command::kQueueShow, "queue", "show", "ID", 1, 1, {}, "one queued message: record and headers"},
      {Command::kQueueHold, "queue", "hold", "ID... [--reason=TEXT]", 1, kMany, {"reason"},
       "stop delivering these messages until released"},
      {Command::kQueueRelease, "queue", "release", "ID...", 1, kMany, {}, "deliver held messages again"},
      {Command::kQueueDelete, "queue", "delete", "ID...", 1, kMany, {}, "remove messages (no bounce)"},
      {Command::kQueueFlush, "queue", "flush", "[ID...]", 0, kMany, {},
       "retry deferred messages now (all of them without IDs)"},
      {Command::kQueueMove, "queue", "move", "ID...|--all --to=HOST:PORT", 0, kMany, {"to", "all"},
       "hand messages to another reinject replica (same ids, states and records)"},
  };
  return specs;
}

struct GlobalFlag {
  const char* name;
  const char* value;  // placeholder for --help
  const char* summary;
};

constexpr GlobalFlag kGlobalFlags[] = {
    {"admin", "HOST:PORT[,HOST:PORT...]",
     "admin endpoints (repeatable); a DNS name means every address it resolves to"},
    {"stage", "STAGE", "the default endpoint of frontend, filter-bridge or reinject (repeatable)"},
    {"output", "table|json", "table for people (default), one JSON document for scripts"},
    {"token", "TOKEN", "bearer token sent with every call"},
    {"token_file", "FILE", "read the bearer token from FILE (keeps it out of `ps`)"},
    {"tls_ca", "FILE", "verify the admin endpoints with these CA certificates (TLS)"},
    {"tls_cert", "FILE", "client certificate for mTLS (with --tls_key)"},
    {"tls_key", "FILE", "client private key for mTLS (with --tls_cert)"},
    {"timeout", "DURATION", "deadline of each call, e.g. 500ms, 5s (default 5s)"},
    {"help", "", "this text"},
};

bool IsGlobalFlag(std::string_view name) {
  return std::any_of(std::begin(kGlobalFlags), std::end(kGlobalFlags),
                     [&](const GlobalFlag& f) { return std::string_view(f.name) == name; });
}

absl::Status Usage(std::string_view message) {
  return absl::InvalidArgumentError(std::string(message));
}

std::string FullName(const CommandSpec& spec) {
  return *spec.group == '\0' ? std::string(spec.name) : absl::StrCat(spec.group, " ", spec.name);
}

bool IsGroup(std::string_view word) {
  return std::any_of(Specs().begin(), Specs().end(),
                     [&](const CommandSpec& s) { return std::string_view(s.group) == word; });
}

const CommandSpec* FindSpec(std::string_view group, std::string_view name) {
  for (const CommandSpec& s : Specs()) {
    if (std::string_view(s.group) == group && std::string_view(s.name) == name) return &s;
  }
  return nullptr;
}

std::vector<std::string> SubcommandNames(std::string_view group) {
  std::vector<std::string> names;
  for (const CommandSpec& s : Specs()) {
    if (std::string_view(s.group) == group) names.emplace_back(s.name);
  }
  return names;
}

// The commands that define a flag, for "does not apply" messages.
std::vector<std::string> CommandsWithFlag(std::string_view flag) {
  std::vector<std::string> names;
  for (const CommandSpec& s : Specs()) {
    if (std::find(s.flags.begin(), s.flags.end(), flag) != s.flags.end()) names.push_back(FullName(s));
  }
  return names;
}

absl::StatusOr<sluice::v1::QueueState> ParseQueueState(const std::string& text) {
  sluice::v1::QueueState state;
  std::string upper = absl::AsciiStrToUpper(text);
  if (upper != "QUEUE_STATE_UNSPECIFIED" && sluice::v1::QueueState_Parse(upper, &state)) return state;
  return Usage(absl::StrCat("bad --state \"", text,
                            "\": one of incoming, active, deferred, hold, corrupt"));
}

absl::Status ApplyGlobalFlag(std::string_view name, const std::string& value, GlobalOptions& g) {
  if (name == "admin") {
    for (absl::string_view entry : absl::StrSplit(value, ',', absl::SkipWhitespace())) {
      std::string e(absl::StripAsciiWhitespace(entry));
      auto hp = sluice::net::ParseHostPort(e);
      if (!hp.ok() || hp->host.empty() || hp->port == 0) {
        return Usage(absl::StrCat("bad --admin \"", e, "\": expected HOST:PORT"));
      }
      g.admin.push_back(e);
    }
    if (value.empty()) return Usage("--admin needs HOST:PORT");
  } else if (name == "stage") {
    for (absl::string_view entry : absl::StrSplit(value, ',')) {
      if (std::find(std::begin(kStageNames), std::end(kStageNames), std::string_view(entry.data(), entry.size())) ==
          std::end(kStageNames)) {
        return Usage(absl::StrCat("bad --stage \"", std::string(entry),
                                  "\": one of frontend, filter-bridge, reinject"));
      }
      if (std::find(g.stages.begin(), g.stages.end(), std::string(entry)) == g.stages.end()) {
        g.stages.emplace_back(entry);
      }
    }
  } else if (name == "output") {
    if (value == "table") {
      g.output = OutputFormat::kTable;
    } else if (value == "json") {
      g.output = OutputFormat::kJson;
    } else {
      return Usage(absl::StrCat("bad --output \"", value, "\": table or json"));
    }
  } else if (name == "timeout") {
    auto d = ParseDuration(value, absl::Seconds(1));
    if (!d.ok()) return Usage(absl::StrCat("--timeout: ", d.status().message()));
    if (*d <= absl::ZeroDuration()) return Usage("--timeout must be more than 0");
    g.timeout = *d;
  } else {
    if (value.empty()) return Usage(absl::StrCat("--", std::string(name), " needs a value"));
    if (name == "token") g.token = value;
    if (name == "token_file") g.token_file = value;
    if (name == "tls_ca") g.tls_ca = value;
    if (name == "tls_cert") g.tls_cert = value;
    if (name == "tls_key") g.tls_key = value;
  }
  return absl::OkStatus();
}

absl::Status ApplyCommandFlag(std::string_view name, const std::string& value, CommandOptions& o) {
  if (name == "timeout") {
    auto d = ParseDuration(value, absl::Seconds(1));
    if (!d.ok()) return Usage(absl::StrCat("drain --timeout: ", d.status().message()));
    o.drain_timeout = *d;
  } else if (name == "state") {
    auto state = ParseQueueState(value);
    if (!state.ok()) return state.status();
    o.queue_state = *state;
  } else if (name == "client") {
    o.client = value;
  } else if (name == "sender") {
    o.sender = value;
  } else if (name == "recipient") {
    o.recipient = value;
  } else if (name == "reason") {
    o.reason = value;
  } else if (name == "to") {
    o.move_to = value;
  } else if (name == "handoff") {
    if (value != "true" && value != "false") return Usage("drain --handoff takes no value (or true/false)");
    o.drain_handoff = value == "true";
  } else if (name == "all") {
    if (value != "true" && value != "false") return Usage("queue move --all takes no value (or true/false)");
    o.move_all = value == "true";
  }
  return absl::OkStatus();
}

// Cross-flag rules, checked once everything is read.
absl::Status CheckCombinations(const Invocation& inv) {
  const GlobalOptions& g = inv.global;
  if (!g.token.empty() && !g.token_file.empty()) return Usage("give --token or --token_file, not both");
  if (g.tls_cert.empty() != g.tls_key.empty()) return Usage("--tls_cert and --tls_key go together (mTLS)");
  if (!g.stages.empty() && !g.admin.empty() && inv.command != Command::kSessions) {
    return Usage("--stage picks a default endpoint; with --admin, leave it out");
  }
  if (inv.command == Command::kQueueMove) {
    if (inv.options.move_to.empty()) return Usage("queue move needs --to=HOST:PORT (the replica to hand the messages to)");
    if (inv.options.move_all == !inv.args.empty()) return Usage("queue move takes IDs or --all (one of them)");
  }
  if (IsQueueCommand(inv.command)) {
    for (const std::string& stage : g.stages) {
      if (stage != "reinject") return Usage(absl::StrCat("--stage=", stage, ": queue commands go to reinject"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

bool IsQueueCommand(Command command) {
  switch (command) {
    case Command::kQueueList:
    case Command::kQueueShow:
    case Command::kQueueHold:
    case Command::kQueueRelease:
    case Command::kQueueDelete:
    case Command::kQueueFlush:
    case Command::kQueueMove:
      return true;
    default:
      return false;
  }
}

absl::StatusOr<Invocation> ParseCommandLine(const std::vector<std::string>& args) {
  Invocation inv;
  for (const std::string& a : args) {
    if (a == "--") break;
    if (a == "--help" || a == "-h" || a == "--help=true") return inv;  // Command::kHelp
  }

  const CommandSpec* spec = nullptr;
  std::string group;  // a group word seen, waiting for its subcommand
  bool flags_ended = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (flags_ended || a.size() < 2 || a[0] != '-') {
      if (spec != nullptr) {
        inv.args.push_back(a);
      } else if (!group.empty()) {
        spec = FindSpec(group, a);
        if (spec == nullptr) {
          return Usage(absl::StrCat("unknown ", group, " command \"", a, "\" (", group, " ",
                                    absl::StrJoin(SubcommandNames(group), "|"), ")"));
        }
      } else if (a == "help") {
        return inv;
      } else if (IsGroup(a)) {
        group = a;
      } else {
        spec = FindSpec("", a);
        if (spec == nullptr) return Usage(absl::StrCat("unknown command \"", a, "\""));
      }
      continue;
    }
    if (a == "--") {
      flags_ended = true;
      continue;
    }
    if (a.rfind("--", 0) != 0) return Usage(absl::StrCat("unknown flag ", a));

    std::string name = a.substr(2);
    std::optional<std::string> value;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
    }
    const bool command_flag =
        spec != nullptr && std::find(spec->flags.begin(), spec->flags.end(), name) != spec->flags.end();
    if (!command_flag && !IsGlobalFlag(name)) {
      std::vector<std::string> owners = CommandsWithFlag(name);
      if (owners.empty()) return Usage(absl::StrCat("unknown flag --", name));
      if (spec != nullptr) {
        return Usage(absl::StrCat("flag --", name, " does not apply to ", FullName(*spec), " (it is a flag of ",
                                  absl::StrJoin(owners, ", "), ")"));
      }
      return Usage(absl::StrCat("flag --", name, " belongs after the command ", absl::StrJoin(owners, ", ")));
    }
    if (!value.has_value() && (name == "all" || name == "handoff") && command_flag) value = "true";  // switches
    if (!value.has_value()) {
      if (i + 1 >= args.size()) return Usage(absl::StrCat("flag --", name, " needs a value"));
      value = args[++i];
    }
    absl::Status applied = command_flag ? ApplyCommandFlag(name, *value, inv.options)
                                        : ApplyGlobalFlag(name, *value, inv.global);
    if (!applied.ok()) return applied;
  }

  if (spec == nullptr) {
    if (!group.empty()) {
      return Usage(absl::StrCat(group, " needs a command: ", absl::StrJoin(SubcommandNames(group), ", ")));
    }
    return Usage("no command given");
  }
  inv.command = spec->command;
  inv.command_name = FullName(*spec);
  if (inv.args.size() < spec->min_args || inv.args.size() > spec->max_args) {
    if (spec->max_args == 0) {
      return Usage(absl::StrCat(inv.command_name, " takes no arguments (got \"", inv.args.front(), "\")"));
    }
    return Usage(absl::StrCat("usage: sluicectl ", inv.command_name, " ", spec->usage));
  }
  for (const std::string& arg : inv.args) {
    if (arg.empty()) return Usage(absl::StrCat(inv.command_name, ": empty argument"));
  }
  if (absl::Status s = CheckCombinations(inv); !s.ok()) return s;
  return inv;
}

std::string HelpText() {
  std::string out =
      "sluicectl -- the operator's client for every sluice stage and replica.\n"
      "\n"
      "Usage: sluicectl [FLAGS] COMMAND [ARGS] [COMMAND FLAGS]\n"
      "\n"
      "Commands:\n";
  // "  NAME ARGS" on one line, the summary indented below it.
  auto entry = [&out](const std::string& left, const char* summary) {
    absl::StrAppend(&out, "  ", left, "\n      ", summary, "\n");
  };
  for (const CommandSpec& s : Specs()) entry(absl::StrCat(FullName(s), *s.usage == '\0' ? "" : " ", s.usage), s.summary);
  absl::StrAppend(&out,
                  "\n"
                  "  Queue commands go to the reinject stage; every other command to every stage.\n"
                  "  queue list --state is one of incoming, active, deferred, hold, corrupt.\n"
                  "  limits set KEY is a Limits field (limits get lists them); durations take\n"
                  "  5m, 1h30m, 2d where the field is a duration; lists are comma-separated.\n"
                  "\n"
                  "Flags:\n");
  for (const GlobalFlag& f : kGlobalFlags) {
    entry(absl::StrCat("--", f.name, *f.value == '\0' ? "" : "=", f.value), f.summary);
  }
  absl::StrAppend(&out,
                  "\n"
                  "  Default endpoints: frontend 127.0.0.1:9101, filter-bridge 127.0.0.1:9102,\n"
                  "  reinject 127.0.0.1:9103. A DNS name in --admin (a Kubernetes headless Service)\n"
                  "  means one call per address it resolves to; rows name the replica's address.\n"
                  "\n"
                  "Exit codes:\n"
                  "  0  ok\n"
                  "  1  a call failed on at least one replica (partial results still printed)\n"
                  "  2  usage error (unknown flag, command or limit key; bad value)\n"
                  "  3  not found (the session or queue id is on no replica)\n"
                  "  4  permission denied (token missing or wrong)\n"
                  "  5  unavailable (no replica reachable)\n");
  return out;
}

}  // namespace sluice::ctl
