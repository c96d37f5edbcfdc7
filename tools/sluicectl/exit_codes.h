// tools/sluicectl/exit_codes.h
//
// The exit codes scripts rely on (listed in --help and README.md), and how the gRPC statuses
// of every replica addressed fold into one of them.
//
// Never: renumbers a code (they are a contract); hides a failed replica behind exit 0.
#pragma once

#include <vector>

#include <grpcpp/support/status.h>

namespace sluice::ctl {

enum ExitCode : int {
  kExitOk = 0,                // every call succeeded
  kExitCallFailed = 1,        // a call failed on at least one replica (partial results printed)
  kExitUsage = 2,             // bad command line: unknown flag, command or limit key, bad value
  kExitNotFound = 3,          // the session or queue id is on no replica that answered
  kExitPermissionDenied = 4,  // the token is missing or wrong (PERMISSION_DENIED, UNAUTHENTICATED)
  kExitUnavailable = 5,       // no replica could be reached
};

// The exit code one failed call alone would give.
ExitCode ExitCodeForStatus(grpc::StatusCode code);

// Is this the status of a replica that never answered (refused, unresolvable, timed out)?
bool IsUnreachable(grpc::StatusCode code);

// Folds the statuses of every replica addressed: no replica, or none reachable -> 5; any
// replica refusing the token -> 4; any other failure -> 1; all OK -> 0. Statuses a command
// treats as a normal answer (NOT_FOUND for `session ID`) must be passed as OK.
ExitCode CombineReplicaStatuses(const std::vector<grpc::Status>& statuses);

}  // namespace sluice::ctl
