// services/frontend/proxy_restrictions.cc -- ProxySession's hook into the restriction lists
// (restrictions/restrictions.h): the facts of the session and transaction as a Request.
// Kept apart from proxy_session.cc so the relaying code stays about relaying. Also what the
// checks' actions mean for the transaction: PREPEND headers and HOLD travel in band above
// our Received: ("X-Sluice-Hold: reason", which the filter stage keeps from a trusted
// upstream and reinject turns into its hold queue); DISCARD accepts and drops.
#include "absl/strings/str_cat.h"
#include "lib/observe/log.h"
#include "services/frontend/proxy_session.h"

namespace sluice::frontend {

asio::awaitable<smtp::Reply> ProxySession::Restrict(restrictions::Stage command, std::string_view recipient) {
  const restrictions::Restrictions& lists = *ctx_.restrictions;
  if (!lists.HasChecksFor(command)) co_return smtp::Reply{};
  restrictions::Request req;
  req.command = command;
  req.facts = &facts_;
  req.client_trusted = ClientTrusted();
  req.executor = executor_;
  req.recipient = recipient;
  restrictions::Actions none;
  restrictions::Actions* actions = &none;
  if (t_) {
    req.in_transaction = true;
    req.sender = t_->mail_from;
    req.recipient_count = static_cast<uint32_t>(t_->recipients.size());
    req.size = command == restrictions::Stage::kEndOfData ? t_->content_bytes : t_->declared_size;
    req.instance = t_->instance;
    actions = &t_->actions;
  }
  co_return co_await lists.Evaluate(req, *actions, &refusal_note_);
}

std::string ProxySession::CheckHeaders() const {
  std::string out;
  if (!t_) return out;
  for (const std::string& h : t_->actions.prepend) absl::StrAppend(&out, h, "\r\n");
  if (t_->actions.hold) {
    // One line: a reason from a table or policy server never carries a line end here.
    std::string reason = *t_->actions.hold;
    for (char& c : reason) {
      if (c == '\r' || c == '\n') c = ' ';
    }
    absl::StrAppend(&out, "X-Sluice-Hold: ", reason, "\r\n");
  }
  return out;
}

asio::awaitable<smtp::Reply> ProxySession::AcceptDiscarded(const smtp::RcptTo& rcpt) {
  co_await ReleaseFilter(/*ended_with_final_reply=*/false);  // what the filter already took goes nowhere (RSET)
  smtp::Reply ok = smtp::replies::Ok();
  RecordRecipient(rcpt, ok);
  co_return ok;
}

asio::awaitable<smtp::Reply> ProxySession::StartDiscarded() {
  co_await ReleaseFilter(/*ended_with_final_reply=*/false);
  t_->in_data = true;
  observe::Info("discard_data").Kv("session", facts_.session_id).Kv("client", facts_.client_address);
  co_return smtp::Reply{};  // the session's own 354
}

}  // namespace sluice::frontend
