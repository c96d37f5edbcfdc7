// tools/sluicectl/queue_commands.cc
//
// queue list|show|hold|release|delete|flush|move against the reinject replicas (postqueue -p,
// postcat -h and postsuper for the cluster). Every replica has its own queue, so an id is
// sent to every replica and is "not found" only when no replica knew it. queue move asks
// the replicas addressed to hand the entries to --to (services/reinject/handoff/).
//
// Never: deletes or flushes everything unless asked (delete needs ids; a bare flush is the
// documented "retry all deferred now").
#include <algorithm>
#include <map>
#include <set>

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "lib/control/field_path.h"
#include "sluice/v1/queue.grpc.pb.h"
#include "tools/sluicectl/commands.h"
#include "tools/sluicectl/record_format.h"
#include "tools/sluicectl/table.h"

namespace sluice::ctl {
namespace {

using sluice::v1::Queue;
using sluice::v1::QueueActionResponse;
using sluice::v1::QueueIdsRequest;
using sluice::v1::QueueMoveRequest;
using sluice::v1::QueueMoveResponse;
using sluice::v1::QueueRecord;

std::string StateText(const QueueRecord& r) {
  const auto* value = sluice::v1::QueueState_descriptor()->FindValueByNumber(r.state());
  return value == nullptr ? absl::StrCat(r.state()) : sluice::control::ShortEnumName(value);  // "deferred"
}

std::string WhyText(const QueueRecord& r) {
  if (!r.hold_reason().empty()) return r.hold_reason();
  return r.last_error().empty() ? "-" : r.last_error();
}

// What the table calls the action done on an id.
std::string_view ActionWord(Command command) {
  switch (command) {
    case Command::kQueueHold: return "held";
    case Command::kQueueRelease: return "released";
    case Command::kQueueDelete: return "deleted";
    default: return "flushed";
  }
}

// A move lasts as long as its transfer (the replica bounds it by handoff_timeout_seconds).
constexpr int kMoveDeadlineSeconds = 300;

}  // namespace

ExitCode RunQueueList(CommandEnv& env) {
  const CommandOptions& o = env.invocation.options;
  sluice::v1::ListQueueRequest request;
  request.set_state(o.queue_state);
  request.set_sender(o.sender);
  request.set_recipient(o.recipient);
  auto replies = CallEach<sluice::v1::ListQueueResponse>(
      env.targets, env.connection, [&](const auto& channel, auto* context, auto* response) {
        return Queue::NewStub(channel)->List(context, request, response);
      });
  if (env.json()) {
    env.out << ReplyDocument(env.invocation.command_name, replies);
  } else {
    Table table({"REPLICA", "QUEUE_ID", "STATE", "SIZE", "AGE", "SENDER", "RECIPIENTS", "TRIES", "REASON"});
    std::string totals;
    for (const auto& r : replies) {
      if (!r.status.ok()) continue;
      for (const QueueRecord& q : r.response.records()) {
        std::vector<std::string> rcpts;
        for (const auto& rcpt : q.recipients()) rcpts.push_back(rcpt.address());
        table.AddRow({r.target.label, q.queue_id(), StateText(q), FormatBytes(q.size_bytes()),
                      FormatAge(q.arrived_at(), env.now), q.sender().empty() ? "<>" : q.sender(),
                      FormatShortList(rcpts, 2), absl::StrCat(q.attempts()), WhyText(q)});
      }
      absl::StrAppend(&totals, "-- ", r.target.label, ": ", r.response.records_size(), " shown of ",
                      r.response.total_messages(), " messages, ", FormatBytes(r.response.total_bytes()), "\n");
    }
    env.out << table.Render() << totals;
  }
  return ReportFailures(replies, env.err);
}

ExitCode RunQueueShow(CommandEnv& env) {
  const std::string& id = env.invocation.args.front();
  sluice::v1::GetQueueEntryRequest request;
  request.set_queue_id(id);
  auto replies = CallEach<sluice::v1::QueueEntry>(env.targets, env.connection, [&](const auto& channel, auto* context, auto* response) {
    return Queue::NewStub(channel)->Get(context, request, response);
  });
  const bool found = std::any_of(replies.begin(), replies.end(), [](const auto& r) { return r.status.ok(); });
  if (env.json()) {
    JsonWriter w;
    w.BeginObject().Key("command").String(env.invocation.command_name).Key("queue_id").String(id);
    WriteJsonResults(w, replies);
    WriteJsonErrors(w, replies, /*not_found_is_answer=*/true);
    w.EndObject();
    env.out << w.Finish();
  } else {
    for (const auto& r : replies) {
      if (!r.status.ok()) continue;
      const std::string headers = SanitizeBlock(r.response.headers());
      env.out << "replica: " << r.target.label << "\n" << RenderRecord(r.response.record()) << "headers:\n" << headers;
      if (!headers.empty() && headers.back() != '\n') env.out << "\n";
    }
  }
  return NotFoundUnlessFound(ReportFailures(replies, env.err, /*not_found_is_answer=*/true), found, env.err,
                             "queue id " + id + " is on no replica");
}

ExitCode RunQueueAction(CommandEnv& env) {
  const Command command = env.invocation.command;
  QueueIdsRequest request;
  for (const std::string& id : env.invocation.args) request.add_queue_ids(id);
  if (command == Command::kQueueFlush && request.queue_ids().empty()) request.set_all(true);
  if (command == Command::kQueueHold) request.set_reason(env.invocation.options.reason);
  auto replies = CallEach<QueueActionResponse>(
      env.targets, env.connection, [&](const auto& channel, auto* context, auto* response) {
        auto stub = Queue::NewStub(channel);
        switch (command) {
          case Command::kQueueHold: return stub->Hold(context, request, response);
          case Command::kQueueRelease: return stub->Release(context, request, response);
          case Command::kQueueDelete: return stub->Delete(context, request, response);
          default: return stub->Flush(context, request, response);
        }
      });

  // An id is "not found" when every replica that answered said so. One that a replica knows
  // but did not act on is "skipped": it is not in a state the action applies to (release of
  // a message not on hold, flush of one not deferred), which the queue leaves as it is
  // (postsuper -H/-r do the same).
  std::set<std::string> affected;
  std::map<std::string, size_t> not_found_count;
  size_t answered = 0;
  for (const auto& r : replies) {
    if (!r.status.ok()) continue;
    ++answered;
    affected.insert(r.response.affected().begin(), r.response.affected().end());
    for (const std::string& id : std::set<std::string>(r.response.not_found().begin(), r.response.not_found().end())) {
      ++not_found_count[id];
    }
  }
  std::vector<std::string> nowhere;
  std::vector<std::string> skipped;
  for (const std::string& id : env.invocation.args) {
    if (affected.count(id)) continue;
    std::vector<std::string>& into = answered > 0 && not_found_count[id] == answered ? nowhere : skipped;
    if (std::find(into.begin(), into.end(), id) == into.end()) into.push_back(id);
  }

  if (env.json()) {
    JsonWriter w;
    w.BeginObject().Key("command").String(env.invocation.command_name);
    WriteJsonResults(w, replies);
    w.Key("not_found").StringArray(nowhere);
    w.Key("skipped").StringArray(skipped);
    WriteJsonErrors(w, replies);
    w.EndObject();
    env.out << w.Finish();
  } else {
    Table table({"REPLICA", "QUEUE_ID", "RESULT"});
    for (const auto& r : replies) {
      if (!r.status.ok()) continue;
      for (const std::string& id : r.response.affected()) table.AddRow({r.target.label, id, std::string(ActionWord(command))});
    }
    for (const std::string& id : skipped) table.AddRow({"-", id, "skipped"});
    env.out << table.Render();
  }
  if (answered > 0) {
    for (const std::string& id : skipped) {
      env.err << "sluicectl: queue id " << id << " left as it is (not in a state the action applies to)\n";
    }
  }
  return NotFoundUnlessFound(ReportFailures(replies, env.err), nowhere.empty(), env.err,
                             "queue id(s) on no replica: " + absl::StrJoin(nowhere, ", "));
}

ExitCode RunQueueMove(CommandEnv& env) {
  const CommandOptions& o = env.invocation.options;
  QueueMoveRequest request;
  for (const std::string& id : env.invocation.args) request.add_queue_ids(id);
  request.set_all(o.move_all);
  request.set_to(o.move_to);
  // A move of a full queue takes as long as the transfer: the replica's handoff_timeout_seconds
  // bounds it, and the call waits that long and a little more.
  auto replies = CallEach<QueueMoveResponse>(
      env.targets, env.connection,
      [&](const auto& channel, auto* context, auto* response) {
        return Queue::NewStub(channel)->Move(context, request, response);
      },
      absl::Seconds(kMoveDeadlineSeconds));

  std::set<std::string> moved;
  std::set<std::string> failed;
  std::map<std::string, size_t> not_found_count;
  size_t answered = 0;
  for (const auto& r : replies) {
    if (!r.status.ok()) continue;
    ++answered;
    moved.insert(r.response.moved().begin(), r.response.moved().end());
    failed.insert(r.response.failed().begin(), r.response.failed().end());
    for (const std::string& id : r.response.not_found()) ++not_found_count[id];
  }
  std::vector<std::string> nowhere;
  for (const std::string& id : env.invocation.args) {
    if (!moved.count(id) && !failed.count(id) && answered > 0 && not_found_count[id] == answered) nowhere.push_back(id);
  }
  if (env.json()) {
    JsonWriter w;
    w.BeginObject().Key("command").String(env.invocation.command_name);
    WriteJsonResults(w, replies);
    w.Key("not_found").StringArray(nowhere);
    WriteJsonErrors(w, replies);
    w.EndObject();
    env.out << w.Finish();
  } else {
    Table table({"REPLICA", "QUEUE_ID", "RESULT", "TO"});
    for (const auto& r : replies) {
      if (!r.status.ok()) continue;
      for (const std::string& id : r.response.moved()) table.AddRow({r.target.label, id, "moved", r.response.peer()});
      for (const std::string& id : r.response.failed()) table.AddRow({r.target.label, id, "stays", r.response.peer()});
    }
    env.out << table.Render();
  }
  for (const std::string& id : failed) {
    env.err << "sluicectl: queue id " << id << " stays (busy delivering, or the peer did not take it)\n";
  }
  ExitCode code = NotFoundUnlessFound(ReportFailures(replies, env.err), nowhere.empty(), env.err,
                                      "queue id(s) on no replica: " + absl::StrJoin(nowhere, ", "));
  if (code == kExitOk && !failed.empty()) return kExitCallFailed;
  return code;
}

}  // namespace sluice::ctl
