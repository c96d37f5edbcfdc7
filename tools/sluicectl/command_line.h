// tools/sluicectl/command_line.h
//
// sluicectl's command line: global flags (anywhere), a command (one word, or a group and a
// subcommand: `queue hold`), its arguments, and its own flags (after the command word).
// A flag a command defines wins over the global flag of the same name after that command:
// `sluicectl --timeout=10s drain --timeout=60s` waits 10 s per call and drains for 60 s.
//
// Never: ignores an unknown flag, a flag that does not apply, a missing or extra argument,
// or a bad value; each is an error naming it (exit 2).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "sluice/v1/queue.pb.h"

namespace sluice::ctl {

enum class Command {
  kHelp,
  kStatus,
  kSessions,
  kSession,
  kKill,
  kLimitsGet,
  kLimitsSet,
  kDrain,
  kResume,
  kQueueList,
  kQueueShow,
  kQueueHold,
  kQueueRelease,
  kQueueDelete,
  kQueueFlush,
  kQueueMove,
};

enum class OutputFormat { kTable, kJson };

inline constexpr std::string_view kStageNames[] = {"frontend", "filter-bridge", "reinject"};

struct GlobalOptions {
  std::vector<std::string> admin;   // HOST:PORT, one per entry (comma lists already split)
  std::vector<std::string> stages;  // from --stage, validated stage names
  OutputFormat output = OutputFormat::kTable;
  std::string token;
  std::string token_file;
  std::string tls_ca;
  std::string tls_cert;
  std::string tls_key;
  absl::Duration timeout = absl::Seconds(5);  // per call
};

// The flags of single commands, typed.
struct CommandOptions {
  absl::Duration drain_timeout = absl::ZeroDuration();  // 0: the stage's drain_timeout_seconds
  std::string client;                                   // sessions --client
  sluice::v1::QueueState queue_state = sluice::v1::QUEUE_STATE_UNSPECIFIED;  // queue list --state
  std::string sender;                                   // queue list --sender
  std::string recipient;                                // queue list --recipient
  std::string reason;                                   // queue hold --reason
  std::string move_to;                                  // queue move --to
  bool move_all = false;                                // queue move --all
  bool drain_handoff = false;                           // drain --handoff (reinject)
};

struct Invocation {
  Command command = Command::kHelp;
  std::string command_name;  // "status", "queue hold": for messages and the JSON document
  GlobalOptions global;
  CommandOptions options;
  std::vector<std::string> args;  // IDs, KEY=VALUE pairs
};

// `args` excludes argv[0]. INVALID_ARGUMENT (exit 2) names the offending word.
absl::StatusOr<Invocation> ParseCommandLine(const std::vector<std::string>& args);

// The --help text: commands, flags, exit codes.
std::string HelpText();

// Is `command` one of the queue commands (which address the reinject stage only)?
bool IsQueueCommand(Command command);

}  // namespace sluice::ctl
