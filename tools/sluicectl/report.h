// tools/sluicectl/report.h
//
// What every command does with its replies: failed replicas are named on stderr
// ("sluicectl: 10.0.0.5:9101: UNAVAILABLE: ..."), listed under "errors" in the JSON
// document, and folded into the exit code; the good answers are printed either way.
//
// Never: lets a failure pass without a line on stderr; writes anything but results to stdout.
#pragma once

#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include <grpcpp/support/status.h>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "tools/sluicectl/command_line.h"
#include "tools/sluicectl/connection.h"
#include "tools/sluicectl/exit_codes.h"
#include "tools/sluicectl/fanout.h"
#include "tools/sluicectl/json_output.h"
#include "tools/sluicectl/table.h"
#include "tools/sluicectl/targets.h"
#include "tools/sluicectl/value_format.h"

namespace sluice::ctl {

// Everything a command needs to run: what was asked, whom to ask, where to print.
struct CommandEnv {
  const Invocation& invocation;
  ConnectionOptions connection;
  std::vector<Target> targets;
  std::ostream& out;
  std::ostream& err;
  absl::Time now = absl::Now();  // ages in tables are relative to it

  bool json() const { return invocation.global.output == OutputFormat::kJson; }
};

inline std::string StatusCodeName(grpc::StatusCode code) {
  return absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
}

// NOT_FOUND is an answer ("not here"), not a failure, for commands that look for an id.
inline bool IsFailure(const grpc::Status& status, bool not_found_is_answer) {
  return !status.ok() && !(not_found_is_answer && status.error_code() == grpc::StatusCode::NOT_FOUND);
}

// Names each failed replica on `err` and returns the exit code of the lot.
template <typename R>
ExitCode ReportFailures(const std::vector<Reply<R>>& replies, std::ostream& err,
                        bool not_found_is_answer = false) {
  std::vector<grpc::Status> statuses;
  for (const Reply<R>& r : replies) {
    if (!IsFailure(r.status, not_found_is_answer)) {
      statuses.push_back(grpc::Status::OK);
      continue;
    }
    statuses.push_back(r.status);
    err << "sluicectl: " << r.target.label << ": " << StatusCodeName(r.status.error_code()) << ": "
        << SanitizeCell(r.status.error_message()) << "\n";
  }
  if (replies.empty()) err << "sluicectl: no admin endpoint to call\n";
  return CombineReplicaStatuses(statuses);
}

// For commands that look for one id on every replica: exit 3, with `what` on stderr, when
// every replica answered and none had it; otherwise `code` (a silent replica might have it).
inline ExitCode NotFoundUnlessFound(ExitCode code, bool found, std::ostream& err, const std::string& what) {
  if (code != kExitOk || found) return code;
  err << "sluicectl: " << what << "\n";
  return kExitNotFound;
}

// {"replica": ..., "stage": ...} members of one target (stage only when known).
inline void WriteReplicaMembers(JsonWriter& w, const Target& target) {
  w.Key("replica").String(target.label);
  if (!target.stage.empty()) w.Key("stage").String(target.stage);
}

// "errors":[{"replica":..., "code":"UNAVAILABLE", "message":...}, ...]
template <typename R>
void WriteJsonErrors(JsonWriter& w, const std::vector<Reply<R>>& replies, bool not_found_is_answer = false) {
  w.Key("errors").BeginArray();
  for (const Reply<R>& r : replies) {
    if (!IsFailure(r.status, not_found_is_answer)) continue;
    w.BeginObject();
    WriteReplicaMembers(w, r.target);
    w.Key("code").String(StatusCodeName(r.status.error_code()));
    w.Key("message").String(r.status.error_message());
    w.EndObject();
  }
  w.EndArray();
}

// "results":[{"replica":..., "response":{...}}, ...] for the replicas that answered OK (under
// another key when given).
template <typename R>
void WriteJsonResults(JsonWriter& w, const std::vector<Reply<R>>& replies, std::string_view key = "results") {
  w.Key(key).BeginArray();
  for (const Reply<R>& r : replies) {
    if (!r.status.ok()) continue;
    w.BeginObject();
    WriteReplicaMembers(w, r.target);
    w.Key("response").Message(r.response);
    w.EndObject();
  }
  w.EndArray();
}

// The whole document of a command with one message per replica:
// {"command": "...", "results": [...], "errors": [...]}
template <typename R>
std::string ReplyDocument(const std::string& command, const std::vector<Reply<R>>& replies) {
  JsonWriter w;
  w.BeginObject().Key("command").String(command);
  WriteJsonResults(w, replies);
  WriteJsonErrors(w, replies);
  w.EndObject();
  return w.Finish();
}

}  // namespace sluice::ctl
