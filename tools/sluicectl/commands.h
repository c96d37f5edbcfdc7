// tools/sluicectl/commands.h
//
// The commands, one function each, grouped in a file per command group: stage_commands.cc
// (status, drain, resume), session_commands.cc (sessions, session, kill), limits_commands.cc
// (limits get/set), queue_commands.cc (queue ...). Each calls every target, prints what came
// back (table or JSON) to env.out, names failures on env.err, and returns the exit code.
//
// Never: exits the process (the caller owns that); prints a partial JSON document.
#pragma once

#include "tools/sluicectl/exit_codes.h"
#include "tools/sluicectl/report.h"

namespace sluice::ctl {

ExitCode RunStatus(CommandEnv& env);
ExitCode RunDrain(CommandEnv& env);
ExitCode RunResume(CommandEnv& env);

ExitCode RunSessions(CommandEnv& env);
ExitCode RunSession(CommandEnv& env);
ExitCode RunKill(CommandEnv& env);

ExitCode RunLimitsGet(CommandEnv& env);
ExitCode RunLimitsSet(CommandEnv& env);

ExitCode RunQueueList(CommandEnv& env);
ExitCode RunQueueShow(CommandEnv& env);
ExitCode RunQueueAction(CommandEnv& env);  // hold, release, delete, flush
ExitCode RunQueueMove(CommandEnv& env);

}  // namespace sluice::ctl
