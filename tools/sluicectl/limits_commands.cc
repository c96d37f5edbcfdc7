// tools/sluicectl/limits_commands.cc
//
// limits get, limits set. Limits are shared: `set` sends the same UpdateLimitsRequest (mask =
// the keys given) to every replica addressed, and `get` against several replicas lays them
// side by side -- a column per replica and a DRIFT marker on every limit where they differ --
// so a replica left behind by a failed or partial update is visible at once. `get` also shows
// the data-path limits each SMTP port enforces (Admin.GetEffectiveLimits): the replica's own
// setting, the value in force after the stages behind lowered it, and whose setting that is
// -- a frontend raised to 20 MB in front of a filter-bridge at 10 MB shows 10 MB from the
// filter-bridge. A stage without the call (an older sluice) is left out of that part.
//
// Never: calls a replica before the whole command line parsed (a bad KEY=VALUE changes
// nothing anywhere).
#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "sluice/v1/admin.grpc.pb.h"
#include "tools/sluicectl/commands.h"
#include "tools/sluicectl/limits_update.h"
#include "tools/sluicectl/table.h"

namespace sluice::ctl {
namespace {

using google::protobuf::FieldDescriptor;
using sluice::v1::Admin;
using sluice::v1::EffectiveLimits;
using sluice::v1::Limits;

// LIMIT, then one column per replica that answered, then DRIFT when there are several.
std::string LimitsTable(const std::vector<Reply<Limits>>& replies, const std::vector<const FieldDescriptor*>& fields) {
  std::vector<const Reply<Limits>*> answered;
  for (const auto& r : replies) {
    if (r.status.ok()) answered.push_back(&r);
  }
  const bool several = answered.size() > 1;
  std::vector<std::string> header = {"LIMIT"};
  for (const auto* r : answered) header.push_back(several ? r->target.label : "VALUE");
  if (several) header.push_back("DRIFT");
  Table table(header);
  for (const FieldDescriptor* f : fields) {
    std::vector<std::string> row = {f->name()};
    bool drift = false;
    for (const auto* r : answered) {
      row.push_back(LimitValueText(r->response, f));
      drift = drift || row.back() != row[1];
    }
    if (several) row.push_back(drift ? "drift" : "");
    table.AddRow(std::move(row));
  }
  return answered.empty() ? "" : table.Render();
}

// REPLICA (with several), LIMIT, CONFIGURED, EFFECTIVE, SOURCE: one row per data-path limit.
std::string EffectiveTable(const std::vector<Reply<EffectiveLimits>>& replies) {
  std::vector<const Reply<EffectiveLimits>*> answered;
  for (const auto& r : replies) {
    if (r.status.ok()) answered.push_back(&r);
  }
  if (answered.empty()) return "";
  const bool several = answered.size() > 1;
  std::vector<std::string> header;
  if (several) header.push_back("REPLICA");
  for (const char* h : {"DATA PATH LIMIT", "CONFIGURED", "EFFECTIVE", "SOURCE"}) header.push_back(h);
  Table table(header);
  for (const auto* r : answered) {
    for (const sluice::v1::EffectiveLimit& l : r->response.limits()) {
      std::vector<std::string> row;
      if (several) row.push_back(r->target.label);
      row.push_back(l.name());
      row.push_back(absl::StrCat(l.configured()));
      row.push_back(absl::StrCat(l.value()));
      // The effective value never exceeds the setting: a difference means a stage behind
      // takes less.
      row.push_back(SanitizeCell(l.value() != l.configured() ? absl::StrCat(l.source(), " (lowered)") : l.source()));
      table.AddRow(std::move(row));
    }
  }
  return table.Render();
}

std::vector<const Limits*> Answered(const std::vector<Reply<Limits>>& replies) {
  std::vector<const Limits*> limits;
  for (const auto& r : replies) {
    if (r.status.ok()) limits.push_back(&r.response);
  }
  return limits;
}

void PrintLimits(CommandEnv& env, const std::vector<Reply<Limits>>& replies,
                 const std::vector<const FieldDescriptor*>& fields,
                 const std::vector<Reply<EffectiveLimits>>* effective = nullptr) {
  std::vector<std::string> drift = DriftFields(Answered(replies));
  if (env.json()) {
    JsonWriter w;
    w.BeginObject().Key("command").String(env.invocation.command_name);
    WriteJsonResults(w, replies);
    w.Key("drift").StringArray(drift);
    if (effective != nullptr) WriteJsonResults(w, *effective, "effective");
    WriteJsonErrors(w, replies);
    w.EndObject();
    env.out << w.Finish();
    return;
  }
  env.out << LimitsTable(replies, fields);
  if (effective != nullptr) {
    std::string data_path = EffectiveTable(*effective);
    if (!data_path.empty()) env.out << "\n" << data_path;
  }
}

}  // namespace

ExitCode RunLimitsGet(CommandEnv& env) {
  auto replies = CallEach<Limits>(env.targets, env.connection, [](const auto& channel, auto* context, auto* response) {
    return Admin::NewStub(channel)->GetLimits(context, sluice::v1::GetLimitsRequest(), response);
  });
  // Where the data-path limits really stand; UNIMPLEMENTED (an older stage) is no failure.
  auto effective = CallEach<EffectiveLimits>(env.targets, env.connection,
                                             [](const auto& channel, auto* context, auto* response) {
                                               return Admin::NewStub(channel)->GetEffectiveLimits(
                                                   context, sluice::v1::GetEffectiveLimitsRequest(), response);
                                             });
  PrintLimits(env, replies, LimitFields(), &effective);
  return ReportFailures(replies, env.err);
}

ExitCode RunLimitsSet(CommandEnv& env) {
  auto request = ParseLimitAssignments(env.invocation.args);
  if (!request.ok()) {
    env.err << "sluicectl: " << request.status().message() << "\n";
    return kExitUsage;
  }
  auto replies = CallEach<Limits>(env.targets, env.connection, [&](const auto& channel, auto* context, auto* response) {
    return Admin::NewStub(channel)->UpdateLimits(context, *request, response);
  });
  std::vector<const FieldDescriptor*> changed;
  for (const std::string& path : request->update_mask().paths()) {
    changed.push_back(Limits::descriptor()->FindFieldByName(path));
  }
  PrintLimits(env, replies, changed);
  return ReportFailures(replies, env.err);
}

}  // namespace sluice::ctl
