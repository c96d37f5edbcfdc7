// tools/sluicectl/exit_codes.cc -- see exit_codes.h.
#include "tools/sluicectl/exit_codes.h"

namespace sluice::ctl {

bool IsUnreachable(grpc::StatusCode code) {
  // A deadline hit before any answer is how an address that drops packets looks.
  return code == grpc::StatusCode::UNAVAILABLE || code == grpc::StatusCode::DEADLINE_EXCEEDED;
}

ExitCode ExitCodeForStatus(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return kExitOk;
    case grpc::StatusCode::NOT_FOUND:
      return kExitNotFound;
    case grpc::StatusCode::PERMISSION_DENIED:
    case grpc::StatusCode::UNAUTHENTICATED:
      return kExitPermissionDenied;
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return kExitUnavailable;
    default:
      return kExitCallFailed;
  }
}

ExitCode CombineReplicaStatuses(const std::vector<grpc::Status>& statuses) {
  if (statuses.empty()) return kExitUnavailable;
  bool all_unreachable = true;
  bool any_failed = false;
  bool any_denied = false;
  for (const grpc::Status& s : statuses) {
    if (!IsUnreachable(s.error_code())) all_unreachable = false;
    if (s.ok()) continue;
    any_failed = true;
    if (ExitCodeForStatus(s.error_code()) == kExitPermissionDenied) any_denied = true;
  }
  if (all_unreachable) return kExitUnavailable;
  if (any_denied) return kExitPermissionDenied;
  return any_failed ? kExitCallFailed : kExitOk;
}

}  // namespace sluice::ctl
