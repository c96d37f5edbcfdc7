// tools/sluicectl/run.cc -- see run.h.
#include "tools/sluicectl/run.h"

#include "absl/strings/string_view.h"
#include "tools/sluicectl/command_line.h"
#include "tools/sluicectl/commands.h"
#include "tools/sluicectl/connection.h"
#include "tools/sluicectl/exit_codes.h"
#include "tools/sluicectl/report.h"
#include "tools/sluicectl/targets.h"

namespace sluice::ctl {
namespace {

int UsageError(std::ostream& err, absl::string_view message) {
  err << "sluicectl: " << message << "\nTry 'sluicectl --help'.\n";
  return kExitUsage;
}

ExitCode Dispatch(CommandEnv& env) {
  switch (env.invocation.command) {
    case Command::kStatus: return RunStatus(env);
    case Command::kDrain: return RunDrain(env);
    case Command::kResume: return RunResume(env);
    case Command::kSessions: return RunSessions(env);
    case Command::kSession: return RunSession(env);
    case Command::kKill: return RunKill(env);
    case Command::kLimitsGet: return RunLimitsGet(env);
    case Command::kLimitsSet: return RunLimitsSet(env);
    case Command::kQueueList: return RunQueueList(env);
    case Command::kQueueShow: return RunQueueShow(env);
    case Command::kQueueHold:
    case Command::kQueueRelease:
    case Command::kQueueDelete:
    case Command::kQueueFlush: return RunQueueAction(env);
    case Command::kQueueMove: return RunQueueMove(env);
    case Command::kHelp: break;
  }
  return kExitUsage;
}

}  // namespace

int RunSluicectl(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  auto invocation = ParseCommandLine(args);
  if (!invocation.ok()) return UsageError(err, invocation.status().message());
  if (invocation->command == Command::kHelp) {
    out << HelpText();
    return kExitOk;
  }
  auto connection = LoadConnectionOptions(invocation->global);
  if (!connection.ok()) return UsageError(err, connection.status().message());
  CommandEnv env{*invocation, *connection, ResolveTargets(*invocation), out, err};
  ExitCode code = Dispatch(env);
  out.flush();
  return code;
}

}  // namespace sluice::ctl
