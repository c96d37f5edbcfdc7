// services/frontend/restrictions/restrictions.cc -- see restrictions.h.
#include "services/frontend/restrictions/restrictions.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "lib/observe/log.h"

namespace sluice::frontend::restrictions {
namespace {

std::string Bracketed(std::string_view s) { return absl::StrCat("<", std::string(s), ">"); }

}  // namespace

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

void Restrictions::LogRefusal(const Request& request, const Check& check, const smtp::Reply& reply,
                              std::string_view detail) const {
  // Postfix: "NOQUEUE: reject: RCPT from name[addr]: 554 5.7.1 <r>: Relay access denied;
  // from=<s> to=<r> proto=ESMTP helo=<h>" -- the same facts, in the same order, as logfmt.
  const smtp::SessionFacts& f = *request.facts;
  observe::LogLine line(observe::Level::kInfo, "reject");
  line.Kv("queue_id", "NOQUEUE")
      .Kv("command", ProtocolStateName(request.command, f.esmtp))
      .Kv("client", NameAddr(f))
      .Kv("reply", reply.ToString());
  if (request.in_transaction) line.Kv("from", Bracketed(request.sender));
  if (!request.recipient.empty()) line.Kv("to", Bracketed(request.recipient));
  line.Kv("proto", f.esmtp ? "ESMTP" : "SMTP");
  if (!f.helo.empty()) line.Kv("helo", Bracketed(f.helo));
  line.Kv("check", check.name());
  if (!detail.empty()) line.Kv("detail", detail);
  line.Kv("session", f.session_id);
  if (metrics_ != nullptr) metrics_->RestrictionRefused(check.name(), reply.permanent() ? "reject" : "defer");
}

asio::awaitable<Restrictions::ListResult> Restrictions::RunList(Stage stage, Request& request, Pass& pass,
                                                                smtp::Reply& refusal,
                                                                const Check*& refused_by) const {
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
        LogRefusal(request, *e.check, refusal, v.detail);
        co_return ListResult::kRefused;
      case Action::kDefer:
        refusal = v.reply;
        refused_by = e.check.get();
        LogRefusal(request, *e.check, refusal, v.detail);
        co_return ListResult::kRefused;
    }
    if (v.discard) co_return ListResult::kPermit;  // DISCARD permits, as in Postfix
  }
  co_return ListResult::kDunno;
}

asio::awaitable<smtp::Reply> Restrictions::Evaluate(Request request, Actions& actions) const {
  const std::vector<Stage> due = DueLists(request.command);
  Pass pass;
  for (Stage stage : due) {
    smtp::Reply refusal;
    const Check* refused_by = nullptr;
    ListResult r = co_await RunList(stage, request, pass, refusal, refused_by);
    if (r == ListResult::kRefused) co_return refusal;
  }
  if (pass.defer_if_permit) {
    LogRefusal(request, *pass.defer_if_permit_check, *pass.defer_if_permit, "defer_if_permit");
    co_return *pass.defer_if_permit;
  }
  actions.Merge(pass.actions.prepend, pass.actions.hold, pass.actions.discard);
  co_return smtp::Reply{};
}

}  // namespace sluice::frontend::restrictions
