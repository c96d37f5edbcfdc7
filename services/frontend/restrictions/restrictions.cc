// services/frontend/restrictions/restrictions.cc -- see restrictions.h.
#include "services/frontend/restrictions/restrictions.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "lib/observe/log.h"

namespace sluice::frontend::restrictions {
std::string_view ProtocolStateName(Stage stage, bool esmtp) {
  switch (stage) {
    case Stage::kConnect: return "CONNECT";
    case Stage::kHelo: return esmtp ? "EHLO" : "HELO";
    case Stage::kMail: return "MAIL";
    case Stage::kRcpt: return "RCPT";
    case Stage::kData: return "DATA";
    case Stage::kEndOfData: return "END-OF-MESSAGE";
  }
  return "UNKNOWN";
}

std::string NameAddr(const smtp::SessionFacts& facts) {
  return absl::StrCat(facts.client_name.empty() ? "unknown" : facts.client_name, "[", facts.client_address, "]");
}

void Actions::Merge(const std::vector<std::string>& headers, const std::optional<std::string>& hold_reason,
                    bool discard_all) {
  for (const std::string& h : headers) {
    if (std::find(prepend.begin(), prepend.end(), h) == prepend.end()) prepend.push_back(h);
  }
  if (hold_reason && !hold) hold = hold_reason;
  if (discard_all) discard = true;
}

std::vector<Stage> Restrictions::DueLists(Stage command) const {
  std::vector<Stage> due;
  if (!options_.delay_reject) {
    due.push_back(command);
  } else if (command == Stage::kRcpt) {
    due.push_back(Stage::kConnect);
    due.push_back(Stage::kHelo);
    due.push_back(Stage::kMail);
    due.push_back(Stage::kRcpt);
  } else if (command == Stage::kData || command == Stage::kEndOfData) {
    due.push_back(command);
  }
  return due;
}

void Restrictions::Add(Stage stage, std::shared_ptr<Check> check) {
  if (metrics_ != nullptr) metrics_->DeclareRestriction(check->name());
  lists_[static_cast<int>(stage)].push_back(Entry{std::move(check)});
}

bool Restrictions::HasChecksFor(Stage command) const {
  for (Stage s : DueLists(command)) {
    if (!lists_[static_cast<int>(s)].empty()) return true;
  }
  return false;
}

void Restrictions::Prefetch(const smtp::SessionFacts& facts, asio::any_io_executor executor) const {
  for (const auto& list : lists_) {
    for (const Entry& e : list) e.check->Prefetch(facts, executor);
  }
}

void Restrictions::Refused(const Request& request, const Check& check, const smtp::Reply& reply,
                           std::string_view detail, smtp::RefusalNote* note) const {
  if (metrics_ != nullptr) metrics_->RestrictionRefused(check.name(), reply.permanent() ? "reject" : "defer");
  if (note != nullptr) {
    note->check = std::string(check.name());
    note->detail = std::string(detail);
    return;
  }
  // No session to log it (a connect refusal replaces the greeting): the same line here.
  const smtp::SessionFacts& f = *request.facts;
  smtp::DialogueClient client;
  client.session_id = f.session_id;
  client.name_addr = NameAddr(f);
  client.helo = f.helo;
  client.proto = f.esmtp ? "ESMTP" : "SMTP";
  smtp::DialogueLine line;
  line.command = ProtocolStateName(request.command, f.esmtp);
  line.reply = &reply;
  if (request.in_transaction) line.from = request.sender;
  line.to = request.recipient;
  line.note.check = std::string(check.name());
  line.note.detail = std::string(detail);
  smtp::LogDialogue(client, line);
}

asio::awaitable<Restrictions::ListResult> Restrictions::RunList(Stage stage, Request& request, Pass& pass,
                                                                smtp::Reply& refusal, const Check*& refused_by,
                                                                std::string& detail) const {
  request.stage = stage;
  for (const Entry& e : lists_[static_cast<int>(stage)]) {
    Verdict v = co_await e.check->Evaluate(request);
    const smtp::SessionFacts& f = *request.facts;
    if (v.hold || v.discard) {
      observe::Info(v.discard ? "discard" : "hold")
          .Kv("queue_id", "NOQUEUE")
          .Kv("command", ProtocolStateName(request.command, f.esmtp))
          .Kv("client", NameAddr(f))
          .Kv("check", e.check->name())
          .Kv("reason", v.hold ? *v.hold : v.detail)
          .Kv("session", f.session_id);
    }
    if (v.warn) {
      observe::Info("warn")
          .Kv("queue_id", "NOQUEUE")
          .Kv("command", ProtocolStateName(request.command, f.esmtp))
          .Kv("client", NameAddr(f))
          .Kv("check", e.check->name())
          .Kv("text", *v.warn)
          .Kv("session", f.session_id);
    }
    pass.actions.Merge(v.prepend, v.hold, v.discard);
    switch (v.action) {
      case Action::kDunno: break;
      case Action::kOk: co_return ListResult::kPermit;
      case Action::kDeferIfPermit:
        if (!pass.defer_if_permit) {
          pass.defer_if_permit = v.reply;
          pass.defer_if_permit_check = e.check.get();
        }
        break;
      case Action::kDeferIfReject:
        if (!pass.defer_if_reject) pass.defer_if_reject = v.reply;
        break;
      case Action::kReject:
        // A permanent refusal after DEFER_IF_REJECT is only a "maybe": its 4xx instead.
        refusal = v.reply.permanent() && pass.defer_if_reject ? *pass.defer_if_reject : v.reply;
        refused_by = e.check.get();
        detail = v.detail;
        co_return ListResult::kRefused;
      case Action::kDefer:
        refusal = v.reply;
        refused_by = e.check.get();
        detail = v.detail;
        co_return ListResult::kRefused;
    }
    if (v.discard) co_return ListResult::kPermit;  // DISCARD permits, as in Postfix
  }
  co_return ListResult::kDunno;
}

asio::awaitable<smtp::Reply> Restrictions::Evaluate(Request request, Actions& actions,
                                                    smtp::RefusalNote* note) const {
  const std::vector<Stage> due = DueLists(request.command);
  Pass pass;
  for (Stage stage : due) {
    smtp::Reply refusal;
    const Check* refused_by = nullptr;
    std::string detail;
    ListResult r = co_await RunList(stage, request, pass, refusal, refused_by, detail);
    if (r == ListResult::kRefused) {
      Refused(request, *refused_by, refusal, detail, note);
      co_return refusal;
    }
  }
  if (pass.defer_if_permit) {
    Refused(request, *pass.defer_if_permit_check, *pass.defer_if_permit, "defer_if_permit", note);
    co_return *pass.defer_if_permit;
  }
  actions.Merge(pass.actions.prepend, pass.actions.hold, pass.actions.discard);
  co_return smtp::Reply{};
}

}  // namespace sluice::frontend::restrictions
