// tools/sluicectl/session_commands.cc
//
// sessions, session ID, kill ID. A session keeps its frontend-assigned id at every stage, so
// `session ID` asks every replica of every stage and shows where the session is live now
// (one row per replica holding it) and the owner's full record (the frontend's, when live).
//
// Never: reports "not found" while a replica that might hold the session did not answer
// (that is exit 1, not 3).
#include <algorithm>

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "sluice/v1/admin.grpc.pb.h"
#include "tools/sluicectl/commands.h"
#include "tools/sluicectl/record_format.h"
#include "tools/sluicectl/table.h"

namespace sluice::ctl {
namespace {

using sluice::v1::Admin;
using sluice::v1::SessionMetadata;

std::string ClientText(const SessionMetadata& s) {
  if (s.client_address().empty()) return "-";
  if (s.client_port() == 0) return s.client_address();
  if (s.client_address().find(':') != std::string::npos) return absl::StrCat("[", s.client_address(), "]:", s.client_port());
  return absl::StrCat(s.client_address(), ":", s.client_port());
}

std::string SenderText(const SessionMetadata& s) {
  if (!s.has_current()) return "-";
  return s.current().mail_from().empty() ? "<>" : s.current().mail_from();
}

// Keeps only the sessions at the stages named by --stage, when --admin chose the endpoints
// (with default endpoints, --stage already chose whom to ask).
void FilterByStage(CommandEnv& env, std::vector<Reply<sluice::v1::ListSessionsResponse>>& replies) {
  const GlobalOptions& g = env.invocation.global;
  if (g.stages.empty() || g.admin.empty()) return;
  for (auto& r : replies) {
    auto* sessions = r.response.mutable_sessions();
    sessions->erase(std::remove_if(sessions->begin(), sessions->end(),
                                   [&](const SessionMetadata& s) {
                                     return std::find(g.stages.begin(), g.stages.end(), s.stage()) == g.stages.end();
                                   }),
                    sessions->end());
  }
}

std::vector<std::string> NotFoundReplicas(const std::vector<Reply<SessionMetadata>>& replies) {
  std::vector<std::string> labels;
  for (const auto& r : replies) {
    if (r.status.error_code() == grpc::StatusCode::NOT_FOUND) labels.push_back(r.target.label);
  }
  return labels;
}

// The record to show in full: the owner's (frontend) if live, else the most complete one.
const SessionMetadata* BestRecord(const std::vector<Reply<SessionMetadata>>& replies) {
  const SessionMetadata* best = nullptr;
  for (const auto& r : replies) {
    if (!r.status.ok()) continue;
    const SessionMetadata& s = r.response;
    if (s.stage() == "frontend") return &s;
    if (best == nullptr || (s.complete() && !best->complete())) best = &s;
  }
  return best;
}

}  // namespace

ExitCode RunSessions(CommandEnv& env) {
  sluice::v1::ListSessionsRequest request;
  request.set_client_address(env.invocation.options.client);
  auto replies = CallEach<sluice::v1::ListSessionsResponse>(
      env.targets, env.connection, [&](const auto& channel, auto* context, auto* response) {
        return Admin::NewStub(channel)->ListSessions(context, request, response);
      });
  FilterByStage(env, replies);
  if (env.json()) {
    env.out << ReplyDocument(env.invocation.command_name, replies);
  } else {
    Table table({"REPLICA", "SESSION", "STAGE", "CLIENT", "HELO", "PROTO", "STATE", "TX", "FROM", "RCPTS", "AGE"});
    for (const auto& r : replies) {
      for (const SessionMetadata& s : r.response.sessions()) {
        table.AddRow({r.target.label, s.session_id(), s.stage(), ClientText(s), s.helo(), s.protocol(), s.state(),
                      absl::StrCat(s.transactions()), SenderText(s),
                      s.has_current() ? absl::StrCat(s.current().recipients_size()) : "-",
                      FormatAge(s.connected_at(), env.now)});
      }
    }
    env.out << table.Render();
  }
  return ReportFailures(replies, env.err);
}

ExitCode RunSession(CommandEnv& env) {
  const std::string& id = env.invocation.args.front();
  sluice::v1::GetSessionRequest request;
  request.set_session_id(id);
  auto replies = CallEach<SessionMetadata>(env.targets, env.connection, [&](const auto& channel, auto* context, auto* response) {
    return Admin::NewStub(channel)->GetSession(context, request, response);
  });
  const bool found = std::any_of(replies.begin(), replies.end(), [](const auto& r) { return r.status.ok(); });
  if (env.json()) {
    JsonWriter w;
    w.BeginObject().Key("command").String(env.invocation.command_name).Key("session_id").String(id);
    WriteJsonResults(w, replies);
    w.Key("not_found").StringArray(NotFoundReplicas(replies));
    WriteJsonErrors(w, replies, /*not_found_is_answer=*/true);
    w.EndObject();
    env.out << w.Finish();
  } else if (found) {
    Table where({"REPLICA", "STAGE", "INSTANCE", "STATE", "TX", "PEER", "LAST_COMMAND"});
    for (const auto& r : replies) {
      if (!r.status.ok()) continue;
      const SessionMetadata& s = r.response;
      std::string peer = s.peer_address().empty() ? "-" : absl::StrCat(s.peer_address(), ":", s.peer_port());
      std::string last = FormatAge(s.last_command_at(), env.now);
      where.AddRow({r.target.label, s.stage(), s.instance(), s.state(), absl::StrCat(s.transactions()), peer,
                    last == "-" ? last : absl::StrCat(last, " ago")});
    }
    env.out << where.Render();
    if (auto absent = NotFoundReplicas(replies); !absent.empty()) {
      env.out << "not live at: " << absl::StrJoin(absent, ", ") << "\n";
    }
    const SessionMetadata* record = BestRecord(replies);
    env.out << "\nrecord (" << record->stage() << "):\n" << RenderRecord(*record);
  }
  return NotFoundUnlessFound(ReportFailures(replies, env.err, /*not_found_is_answer=*/true), found, env.err,
                             "session " + id + " is not live on any replica");
}

ExitCode RunKill(CommandEnv& env) {
  const std::string& id = env.invocation.args.front();
  sluice::v1::KillSessionRequest request;
  request.set_session_id(id);
  auto replies = CallEach<sluice::v1::KillSessionResponse>(
      env.targets, env.connection, [&](const auto& channel, auto* context, auto* response) {
        return Admin::NewStub(channel)->KillSession(context, request, response);
      });
  bool killed = false;
  for (const auto& r : replies) killed = killed || (r.status.ok() && r.response.killed());
  if (env.json()) {
    JsonWriter w;
    w.BeginObject().Key("command").String(env.invocation.command_name).Key("session_id").String(id);
    WriteJsonResults(w, replies);
    WriteJsonErrors(w, replies, /*not_found_is_answer=*/true);
    w.EndObject();
    env.out << w.Finish();
  } else {
    Table table({"REPLICA", "STAGE", "KILLED"});
    for (const auto& r : replies) {
      if (r.status.ok()) table.AddRow({r.target.label, r.target.stage.empty() ? "-" : r.target.stage, r.response.killed() ? "yes" : "no"});
    }
    env.out << table.Render();
  }
  return NotFoundUnlessFound(ReportFailures(replies, env.err, /*not_found_is_answer=*/true), killed, env.err,
                             "session " + id + " is not live on any replica");
}

}  // namespace sluice::ctl
