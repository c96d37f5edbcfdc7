// lib/control/control_metrics.cc -- see control_metrics.h.
#include "lib/control/control_metrics.h"

#include <utility>

namespace sluice::control {
namespace {

std::vector<std::string> AdminMethods() {
  return {"GetStatus",  "WatchStatus",  "ListSessions", "GetSession", "KillSession",
          "GetLimits",  "UpdateLimits", "Drain",        "Resume"};
}

// The codes an admin call ends with in practice; rarer ones appear when first seen.
std::vector<std::string> CommonCodes() {
  return {"OK",        "CANCELLED",         "INVALID_ARGUMENT", "NOT_FOUND",
          "UNAVAILABLE", "UNAUTHENTICATED", "PERMISSION_DENIED", "INTERNAL"};
}

std::vector<std::string> StateNames() { return {"serving", "draining", "unavailable"}; }

}  // namespace

ControlMetrics::ControlMetrics(prometheus::Registry& registry)
    : admin_calls(registry, "sluice_admin_calls_total",
                  "Admin and Queue gRPC calls served, by method and gRPC status code.",
                  {{"method", AdminMethods()}, {"code", CommonCodes()}}),
      limits_updates(observe::AddCounter(registry, "sluice_limits_updates_total",
                                         "Successful live updates of the Limits in force.")),
      stage_draining(observe::AddGauge(registry, "sluice_stage_draining",
                                       "1 while the stage drains (not accepting), else 0.")),
      stage_state(registry, "sluice_stage_state",
                  "1 for the serving state the stage is in (serving, draining, unavailable), else 0.",
                  {{"state", StateNames()}}),
      build_info(registry, "sluice_build_info", "1, labelled with the version of the running binary.",
                 {{"version", {}}}) {}

void ControlMetrics::SetState(std::string_view state) {
  for (const std::string& s : StateNames()) stage_state.at({s}).Set(s == state ? 1 : 0);
}

void ControlMetrics::DeclareMethods(const std::vector<std::string>& methods) {
  for (const std::string& m : methods) {
    for (const std::string& code : CommonCodes()) admin_calls.at({m, code});
  }
}

void ControlMetrics::CountCall(std::string_view full_method, int grpc_code) {
  admin_calls.at({ShortMethodName(full_method), GrpcCodeName(grpc_code)}).Increment();
}

std::string_view ShortMethodName(std::string_view full_method) {
  size_t slash = full_method.rfind('/');
  return slash == std::string_view::npos ? full_method : full_method.substr(slash + 1);
}

std::string_view GrpcCodeName(int code) {
  static constexpr std::string_view kNames[] = {
      "OK",           "CANCELLED",        "UNKNOWN",   "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
      "NOT_FOUND",    "ALREADY_EXISTS",   "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
      "FAILED_PRECONDITION", "ABORTED",   "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL",
      "UNAVAILABLE",  "DATA_LOSS",        "UNAUTHENTICATED"};
  if (code < 0 || code >= static_cast<int>(std::size(kNames))) return "UNKNOWN";
  return kNames[code];
}

}  // namespace sluice::control
