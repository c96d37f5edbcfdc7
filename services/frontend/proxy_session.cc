// services/frontend/proxy_session.cc -- see proxy_session.h.
#include "services/frontend/proxy_session.h"

#include <ctime>

#include "absl/strings/str_cat.h"
#include "lib/control/limits_store.h"
#include "lib/observe/log.h"

namespace sluice::frontend {

ProxySession::ProxySession(FrontendContext& ctx, smtp::SessionFacts& facts, asio::any_io_executor executor,
                           MetadataUpdater update_metadata)
    : ctx_(ctx), facts_(facts), executor_(std::move(executor)), update_metadata_(std::move(update_metadata)),
      limits_(ctx.limits->Get()), speed_adjust_(ctx.config.speed_adjust()) {}

ProxySession::~ProxySession() = default;

bool ProxySession::ClientTrusted() const {
  if (ctx_.relay.ClientInMynetworks(facts_.client_address)) return true;
  return ctx_.config.server().trust_verified_client_cert() && facts_.tls_client_verified;
}

void ProxySession::OnKill() {
  // A wait on the filter ends now (the pending call fails and the client gets 451 4.3.0,
  // then the session's 421): a kill or the drain deadline does not wait for proxy_timeout.
  if (t_ && t_->filter) t_->filter->client->Close();
}

void ProxySession::OnLimitHit(std::string_view limit) { ctx_.metrics->LimitHit(limit); }

void ProxySession::OnCommand() {
  const std::time_t now = std::time(nullptr);
  if (now == last_command_second_) return;  // the record holds whole seconds
  last_command_second_ = now;
  update_metadata_([now](sluice::v1::SessionMetadata& m) { m.mutable_last_command_at()->set_seconds(now); });
}

void ProxySession::NoteRefusal(std::string_view check, std::string detail) {
  refusal_note_.check = std::string(check);
  refusal_note_.detail = std::move(detail);
}

smtp::RefusalNote ProxySession::TakeRefusalNote() {
  smtp::RefusalNote note = std::move(refusal_note_);
  refusal_note_ = smtp::RefusalNote{};
  if (note.check.empty()) note.check = "proxy";  // the filter stage's reply, passed on
  return note;
}

void ProxySession::OnTlsFailed() { ctx_.metrics->TlsSession(false); }

void ProxySession::OnTlsStarted() {
  ctx_.metrics->TlsSession(true);
  update_metadata_([&](sluice::v1::SessionMetadata& m) {
    m.set_tls_version(facts_.tls_version);
    m.set_tls_cipher(facts_.tls_cipher);
  });
}

asio::awaitable<smtp::Reply> ProxySession::OnHelo() {
  update_metadata_([&](sluice::v1::SessionMetadata& m) {
    m.set_helo(facts_.helo);
    m.set_protocol(facts_.Protocol());
  });
  co_return co_await Restrict(restrictions::Stage::kHelo, "");
}

asio::awaitable<smtp::Reply> ProxySession::OnMail(const smtp::MailFrom& mail) {
  limits_ = ctx_.limits->Get();  // limits change live; a transaction uses one snapshot
  bool exempt = ctx_.LimitExemptions()->Contains(facts_.client_address);
  bool allowed = co_await ctx_.admission.AllowMessage(facts_.client_address, exempt, *limits_);
  if (!allowed) {
    ctx_.metrics->LimitHit("message_rate");
    NoteRefusal("message_rate");
    co_return smtp::replies::MessageRateExceeded(facts_.client_address);
  }
  t_ = std::make_unique<Transaction>();
  t_->mail_from = mail.address;
  t_->mail_line = absl::StrCat("MAIL FROM:<", mail.address, ">", smtp::FormatParams(mail.params));
  t_->instance = absl::StrCat(facts_.session_id, ".", ++mail_commands_);
  t_->declared_size = mail.size.value_or(0);
  smtp::Reply refused = co_await Restrict(restrictions::Stage::kMail, "");
  if (!refused.empty()) {
    t_.reset();
    co_return refused;
  }
  in_transaction_ = true;
  ctx_.transactions_in_flight.fetch_add(1);
  update_metadata_([&](sluice::v1::SessionMetadata& m) {
    auto* t = m.mutable_current();
    t->Clear();
    t->set_mail_from(mail.address);
    for (const auto& p : mail.params) {
      auto* e = t->add_mail_parameters();
      e->set_keyword(p.keyword);
      e->set_value(p.value);
    }
    t->set_body_type(mail.body);
    t->set_smtputf8(mail.smtputf8);
    t->set_ret(mail.ret);
    t->set_envid(mail.envid);
    t->mutable_started_at()->set_seconds(std::time(nullptr));
    m.set_state("transaction");
  });
  co_return smtp::replies::Ok();
}

asio::awaitable<smtp::Reply> ProxySession::OnRcpt(const smtp::RcptTo& rcpt) {
  // Our own checks first (relay access, tables, verification, policy): before the filter.
  smtp::Reply refused = co_await Restrict(restrictions::Stage::kRcpt, rcpt.address);
  if (!refused.empty()) co_return refused;
  if (t_->actions.discard) co_return co_await AcceptDiscarded(rcpt);
  bool exempt = ctx_.LimitExemptions()->Contains(facts_.client_address);
  bool allowed = co_await ctx_.admission.AllowRecipient(facts_.client_address, exempt, *limits_);
  if (!allowed) {
    ctx_.metrics->LimitHit("recipient_rate");
    NoteRefusal("recipient_rate");
    co_return smtp::replies::RecipientRateExceeded(facts_.client_address);
  }
  std::string line = absl::StrCat("RCPT TO:<", rcpt.address, ">", smtp::FormatParams(rcpt.params));
  if (speed_adjust_) {
    // speed_adjust: no filter connection until the whole message is here; the recipient is
    // accepted locally and replayed then (a refusal becomes the end-of-DATA reply).
    t_->rcpt_lines.push_back(std::move(line));
    smtp::Reply ok = smtp::replies::Ok();
    RecordRecipient(rcpt, ok);
    co_return ok;
  }
  smtp::Reply reply;
  if (!t_->filter) {
    if (!t_->recipients.empty()) {
      // The filter connection that took the earlier recipients is gone (it failed): a new
      // one would carry the message for the later recipients only, while the client thinks
      // all of them were accepted. Nothing more can succeed in this transaction.
      NoteRefusal("proxy", "rcpt: filter connection lost earlier in the transaction");
      co_return smtp::replies::ProxyError();
    }
    // The first recipient that passed our checks starts the transaction at the filter.
    // (No initializer list here: g++ 12 mishandles their backing arrays in coroutines.)
    std::vector<std::string> lines;
    lines.push_back(line);
    std::vector<smtp::Reply> replies;
    smtp::Reply failed = co_await OpenFilter(lines, replies);
    if (!failed.empty()) co_return failed;
    reply = std::move(replies.front());
  } else {
    auto r = co_await t_->filter->client->Command(line);
    if (!r.ok()) co_return ProxyFailed("rcpt", r.status());
    if (r->intermediate() || r->code < 200) co_return Unexpected("rcpt", *r);
    reply = *std::move(r);
  }
  if (reply.positive()) RecordRecipient(rcpt, reply);
  co_return reply;
}

void ProxySession::RecordRecipient(const smtp::RcptTo& rcpt, const smtp::Reply& reply) {
  t_->recipients.push_back(rcpt.address);
  update_metadata_([&](sluice::v1::SessionMetadata& m) {
    auto* rc = m.mutable_current()->add_recipients();
    rc->set_address(rcpt.address);
    rc->set_notify(rcpt.notify);
    rc->set_orcpt(rcpt.orcpt);
    rc->set_reply(reply.ToString());
  });
}

smtp::ReceivedInfo ReceivedInfoFor(const smtp::SessionFacts& facts, const std::string& hostname,
                                   const std::vector<std::string>& recipients) {
  smtp::ReceivedInfo info;
  info.helo = facts.helo;
  info.client_name = facts.client_name;
  info.client_address = facts.client_address;
  info.by_hostname = hostname;
  info.protocol = facts.Protocol();
  info.id = facts.session_id;
  info.tls_version = facts.tls_version;
  info.tls_cipher = facts.tls_cipher;
  if (recipients.size() == 1) info.for_recipient = recipients.front();
  return info;
}

std::string ProxySession::ReceivedHeader() const {
  // The restriction checks' PREPEND headers and hold mark go above our Received:, as
  // Postfix's smtpd puts them (restrictions/restrictions.h).
  return CheckHeaders() + smtp::FormatReceived(ReceivedInfoFor(facts_, ctx_.hostname, t_->recipients), std::time(nullptr));
}

asio::awaitable<smtp::Reply> ProxySession::OnData() {
  smtp::Reply refused = co_await Restrict(restrictions::Stage::kData, "");
  if (!refused.empty()) co_return refused;
  if (t_->actions.discard) co_return co_await StartDiscarded();
  t_->headers.emplace(ctx_, *limits_);
  if (speed_adjust_) co_return StartSpool();
  if (!t_->filter) co_return smtp::replies::ProxyError();  // cannot happen: an accepted RCPT opened it
  // DATA alone, and nothing more until its 354 (RFC 2920 §3.1: DATA ends a group).
  auto r = co_await t_->filter->client->Command("DATA");
  if (!r.ok()) co_return ProxyFailed("data", r.status());
  if (r->code != 354) {
    if (r->transient() || r->permanent()) co_return *r;
    co_return Unexpected("data", *r);
  }
  t_->in_data = true;
  update_metadata_([](sluice::v1::SessionMetadata& m) { m.set_state("data"); });
  // Our trace header first, as Postfix's before-filter smtpd does.
  absl::Status st = co_await t_->filter->client->SendContent(ReceivedHeader());
  if (!st.ok()) co_return ProxyFailed("data", st);
  co_return *r;  // the filter's 354 is the client's 354
}

asio::awaitable<absl::Status> ProxySession::OnContent(std::string_view chunk) {
  t_->content_bytes += chunk.size();
  ctx_.metrics->received_bytes().Increment(static_cast<double>(chunk.size()));
  if (t_->actions.discard) co_return absl::OkStatus();  // DISCARD: read and dropped
  co_return co_await ForwardContent(t_->headers->Filter(chunk));
}

asio::awaitable<absl::Status> ProxySession::ForwardContent(std::string_view chunk) {
  if (chunk.empty()) co_return absl::OkStatus();
  if (speed_adjust_) co_return SpoolContent(chunk);
  if (!t_->filter) co_return absl::UnavailableError("filter connection gone");
  absl::Status st = co_await t_->filter->client->SendContent(chunk);
  if (!st.ok()) {
    (void)ProxyFailed("content", st);
    co_return st;
  }
  co_return absl::OkStatus();
}

asio::awaitable<smtp::Reply> ProxySession::FinishAtFilter() {
  if (!t_->filter) co_return smtp::replies::ProxyError();
  auto started = std::chrono::steady_clock::now();
  // The final dot, then nothing until its reply.
  auto r = co_await t_->filter->client->FinishContent();
  if (!r.ok()) co_return ProxyFailed("end_of_data", r.status());
  if (r->intermediate() || r->code < 200) co_return Unexpected("end_of_data", *r);
  ctx_.metrics->proxy_reply_seconds().Observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  if (r->code == 421) DropFilter();  // the filter is closing the connection
  co_await ReleaseFilter(/*ended_with_final_reply=*/true);
  co_return *r;
}

asio::awaitable<smtp::Reply> ProxySession::OnDataEnd(smtp::DataOutcome outcome) {
  t_->in_data = false;
  if (outcome == smtp::DataOutcome::kComplete && t_->headers) {  // none when DISCARDed
    // A header that never ended may still hold a field back (usually nothing).
    absl::Status st = co_await ForwardContent(t_->headers->Finish());
    if (!st.ok()) outcome = smtp::DataOutcome::kHandlerFailed;
  }
  if (outcome != smtp::DataOutcome::kComplete && outcome != smtp::DataOutcome::kHandlerFailed) {
    // Never send the final dot of a message we refuse: drop the filter connection instead,
    // so the filter discards what it got.
    DropFilter();
    t_.reset();
    EndTransaction("aborted");
    co_return smtp::replies::ProxyError();
  }
  smtp::Reply reply;
  // END-OF-MESSAGE checks: a refusal drops the filter connection before its final dot.
  if (outcome == smtp::DataOutcome::kComplete) reply = co_await Restrict(restrictions::Stage::kEndOfData, "");
  if (!reply.empty()) {
    DropFilter();  // refused by a check (already logged)
  } else if (outcome == smtp::DataOutcome::kComplete && t_->actions.discard) {
    DropFilter();  // DISCARD: the filter never sees the final dot; the client is told 250
    reply = smtp::replies::Discarded();
  } else if (outcome == smtp::DataOutcome::kHandlerFailed) {
    // The content could not be relayed or spooled (already logged): a 4xx, nothing sent on.
    DropFilter();
    reply = smtp::replies::ProxyError();
  } else if (speed_adjust_) {
    reply = co_await Replay();
  } else {
    reply = co_await FinishAtFilter();
  }
  // The queue id of "queued as ID" ties this line to reinject's; the session's own lines
  // list each recipient (event=accept/reject, lib/smtp/dialogue_log.h).
  const std::string queue_id = reply.positive() ? smtp::QueueIdFromReply(reply) : std::string();
  observe::Info("transaction")
      .Kv("session", facts_.session_id)
      .Kv("client", facts_.client_address)
      .Kv("from", t_->mail_from)
      .Kv("nrcpt", static_cast<uint64_t>(t_->recipients.size()))
      .Kv("size", t_->content_bytes)
      .Kv("message_id", facts_.message_id)
      .Kv("queue_id", queue_id.empty() ? std::string("NOQUEUE") : queue_id)
      .Kv("reply", reply.ToString());
  update_metadata_([&](sluice::v1::SessionMetadata& m) {
    m.mutable_current()->set_size_bytes(t_->content_bytes);
    m.mutable_current()->set_final_reply(reply.ToString());
  });
  EndTransaction(reply.positive() ? "delivered" : reply.permanent() ? "rejected" : "deferred");
  co_await ReleaseFilter(/*ended_with_final_reply=*/false);  // only left when the filter got no final dot
  t_.reset();
  co_return reply;
}

void ProxySession::EndTransaction(std::string_view outcome) {
  if (!in_transaction_) return;
  in_transaction_ = false;
  ctx_.transactions_in_flight.fetch_sub(1);
  ctx_.metrics->Transaction(outcome);
  update_metadata_([](sluice::v1::SessionMetadata& m) {
    m.set_state("command");
    m.set_transactions(m.transactions() + 1);
  });
}

asio::awaitable<void> ProxySession::OnReset() {
  if (t_ && t_->in_data) DropFilter();  // mid-content: never let the filter see an end
  co_await ReleaseFilter(/*ended_with_final_reply=*/false);
  t_.reset();  // and with it the speed_adjust spool file
  EndTransaction("aborted");
}

asio::awaitable<void> ProxySession::OnClose() { co_await OnReset(); }

}  // namespace sluice::frontend
