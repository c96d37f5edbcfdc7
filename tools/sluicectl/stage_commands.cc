// tools/sluicectl/stage_commands.cc
//
// status, drain, resume: one StageStatus per replica, shown as one table row each (a replica
// that did not answer gets a row saying why, so a missing replica is seen, not inferred).
//
// Never: drains or resumes a replica the operator did not address.
#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "sluice/v1/admin.grpc.pb.h"
#include "tools/sluicectl/commands.h"
#include "tools/sluicectl/table.h"
#include "tools/sluicectl/value_format.h"

namespace sluice::ctl {
namespace {

using sluice::v1::Admin;
using sluice::v1::StageStatus;

// drain --handoff: the drain (the stage's drain_timeout_seconds when --timeout is not given,
// 60 s by default) and the hand-off (handoff_timeout_seconds, 120 s by default) and a margin.
constexpr int kDrainHandoffWaitSeconds = 300;

std::string StateText(const StageStatus& s) {
  std::string state = sluice::v1::ServingState_Name(s.state());
  if (!s.state_reason().empty()) absl::StrAppend(&state, " (", s.state_reason(), ")");
  return state;
}

std::string DownstreamText(const StageStatus& s) {
  if (s.downstream().empty()) return "-";
  return absl::StrCat(s.downstream(), s.downstream_accepting() ? " accepting" : " FULL");
}

std::string QueueText(const StageStatus& s) {
  if (s.stage() != "reinject") return "-";
  return absl::StrCat(s.queue_messages(), " msgs ", FormatBytes(s.queue_bytes()), ", disk free ",
                      FormatBytes(s.disk_free_bytes()));
}

ExitCode PrintStatuses(CommandEnv& env, const std::vector<Reply<StageStatus>>& replies) {
  if (env.json()) {
    env.out << ReplyDocument(env.invocation.command_name, replies);
  } else {
    Table table({"REPLICA", "STAGE", "INSTANCE", "STATE", "ACCEPTING", "SESSIONS", "IN_FLIGHT", "UP",
                 "DOWNSTREAM", "QUEUE", "VERSION"});
    for (const auto& r : replies) {
      if (!r.status.ok()) {
        table.AddRow({r.target.label, r.target.stage.empty() ? "?" : r.target.stage, "-",
                      absl::StrCat("ERROR ", StatusCodeName(r.status.error_code()))});
        continue;
      }
      const StageStatus& s = r.response;
      table.AddRow({r.target.label, s.stage(), s.instance(), StateText(s), s.accepting() ? "yes" : "no",
                    absl::StrCat(s.sessions_active(), "/", s.sessions_max()), absl::StrCat(s.transactions_in_flight()),
                    FormatAge(s.started_at(), env.now), DownstreamText(s), QueueText(s), s.version()});
    }
    env.out << table.Render();
  }
  return ReportFailures(replies, env.err);
}

}  // namespace

ExitCode RunStatus(CommandEnv& env) {
  auto replies = CallEach<StageStatus>(env.targets, env.connection, [](const auto& channel, auto* context, auto* response) {
    return Admin::NewStub(channel)->GetStatus(context, sluice::v1::GetStatusRequest(), response);
  });
  return PrintStatuses(env, replies);
}

ExitCode RunDrain(CommandEnv& env) {
  sluice::v1::DrainRequest request;
  const absl::Duration drain = env.invocation.options.drain_timeout;
  request.set_timeout_seconds(static_cast<uint32_t>(absl::ToInt64Seconds(absl::Ceil(drain, absl::Seconds(1)))));
  request.set_handoff(env.invocation.options.drain_handoff);
  // A stage may answer only once its in-flight work is done: give the call that long too.
  // With --handoff, the answer comes when the hand-off has ended (the replica's
  // handoff_timeout_seconds bounds it) after a drain of up to its drain timeout.
  absl::Duration wait = drain;
  if (request.handoff()) wait += absl::Seconds(kDrainHandoffWaitSeconds);
  auto replies = CallEach<StageStatus>(
      env.targets, env.connection,
      [&](const auto& channel, auto* context, auto* response) {
        return Admin::NewStub(channel)->Drain(context, request, response);
      },
      wait);
  return PrintStatuses(env, replies);
}

ExitCode RunResume(CommandEnv& env) {
  auto replies = CallEach<StageStatus>(env.targets, env.connection, [](const auto& channel, auto* context, auto* response) {
    return Admin::NewStub(channel)->Resume(context, sluice::v1::ResumeRequest(), response);
  });
  return PrintStatuses(env, replies);
}

}  // namespace sluice::ctl
