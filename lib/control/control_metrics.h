// lib/control/control_metrics.h
//
// The metrics of the control plane every stage shares, declared in one place:
//   sluice_admin_calls_total{method,code}  admin/queue gRPC calls by short method name and
//                                          gRPC status code (refused tokens included)
//   sluice_limits_updates_total            successful live Limits updates
//   sluice_stage_draining                  1 while the stage drains, else 0
//   sluice_stage_state{state}              1 for the state the stage is in (serving,
//                                          draining, unavailable), 0 for the others
//   sluice_build_info{version}             1, naming the version running
// Every Admin method x common status code exists from start-up (zeros, not gaps).
//
// Never: labels by caller, session id or anything else unbounded.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "lib/observe/metrics.h"

namespace sluice::control {

struct ControlMetrics {
  explicit ControlMetrics(prometheus::Registry& registry);

  // Pre-creates the rows of further methods (e.g. every sluice.v1.Queue method).
  void DeclareMethods(const std::vector<std::string>& methods);
  // Counts one finished call; `full_method` is the gRPC path "/sluice.v1.Admin/GetStatus".
  void CountCall(std::string_view full_method, int grpc_code);

  observe::Labelled<prometheus::Counter> admin_calls;
  prometheus::Counter& limits_updates;
  prometheus::Gauge& stage_draining;
  observe::Labelled<prometheus::Gauge> stage_state;
  observe::Labelled<prometheus::Gauge> build_info;
  // Sets sluice_stage_state: 1 for `state` ("serving", "draining" or "unavailable").
  void SetState(std::string_view state);
};

// "GetStatus" for "/sluice.v1.Admin/GetStatus".
std::string_view ShortMethodName(std::string_view full_method);
// "INVALID_ARGUMENT" for 3.
std::string_view GrpcCodeName(int code);

}  // namespace sluice::control
