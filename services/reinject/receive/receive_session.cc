// services/reinject/receive/receive_session.cc -- see receive_session.h.
#include "services/reinject/receive/receive_session.h"

#include <ctime>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "lib/observe/log.h"
#include "lib/smtp/xforward_session.h"
#include "lib/smtp/received_header.h"

namespace sluice::reinject {
namespace {


std::string MessageIdFor(const std::string& queue_id, const std::string& hostname) {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%d%H%M%S", &tm);
  return absl::StrCat("<", stamp, ".", queue_id, "@", hostname, ">");
}


// Postfix's reply for it (cleanup: CLEANUP_STAT_HOPS).

}  // namespace

ReceiveSession::ReceiveSession(ReceiveContext& ctx, smtp::SessionFacts& facts,
                               std::shared_ptr<control::SessionHandle> handle)
    : ctx_(ctx), facts_(facts), handle_(std::move(handle)) {}

smtp::RefusalNote ReceiveSession::TakeRefusalNote() {
  smtp::RefusalNote note = std::move(refusal_note_);
  refusal_note_ = smtp::RefusalNote{};
  return note;
}

void ReceiveSession::DescribeClient(smtp::DialogueClient& client) const {
  // Under the frontend's session id, naming the original client (XFORWARD), as a Postfix
  // after-filter smtpd logs it.
  if (smtp::XforwardKnown(xforward_.ident)) client.session_id = *xforward_.ident;
  if (smtp::XforwardKnown(xforward_.addr)) client.name_addr = OrigClientText();
  if (smtp::XforwardKnown(xforward_.helo)) client.helo = *xforward_.helo;
  if (smtp::XforwardKnown(xforward_.proto)) client.proto = *xforward_.proto;
}

std::string ReceiveSession::OrigClientText() const {
  if (!smtp::XforwardKnown(xforward_.addr)) return "";
  return absl::StrCat(smtp::XforwardKnown(xforward_.name) ? *xforward_.name : "unknown", "[", *xforward_.addr, "]");
}

asio::awaitable<smtp::Reply> ReceiveSession::OnHelo() {
  handle_->Update([&](sluice::v1::SessionMetadata& m) { m.set_protocol(facts_.Protocol()); });
  co_return smtp::Reply{};
}

asio::awaitable<smtp::Reply> ReceiveSession::OnXforward(const smtp::XforwardAttrs& attrs) {
  smtp::MergeXforward(xforward_, attrs);
  // IDENT is the frontend's session id: this hop is then found under it at every stage.
  handle_->Update([&](sluice::v1::SessionMetadata& m) { smtp::ApplyXforward(xforward_, m); });
  co_return smtp::Reply{};
}

asio::awaitable<smtp::Reply> ReceiveSession::OnMail(const smtp::MailFrom& mail) {
  absl::Status room = ctx_.store->CheckAdmission(mail.size.value_or(0));
  if (!room.ok()) {
    ctx_.metrics->transactions.at({"queue_full"}).Increment();
    observe::Warn("queue_full").Kv("session", handle_->session_id()).Kv("error", std::string(room.message()));
    NoteRefusal("queue_full", std::string(room.message()));
    co_return smtp::replies::QueueFull();
  }
  record_.Clear();
  record_.set_sender(mail.address);
  record_.set_ret(mail.ret);
  record_.set_envid(mail.envid);
  record_.set_body_type(mail.body);
  record_.set_smtputf8(mail.smtputf8);
  in_transaction_ = true;
  if (ctx_.runtime != nullptr) txn_ = ctx_.runtime->BeginTransaction();
  // The live record shows the transaction too (Admin.ListSessions/GetSession, sluicectl).
  handle_->Update([&](sluice::v1::SessionMetadata& m) {
    sluice::v1::Transaction* t = m.mutable_current();
    t->Clear();
    t->set_mail_from(mail.address);
    t->set_body_type(mail.body);
    t->set_smtputf8(mail.smtputf8);
    t->set_ret(mail.ret);
    t->set_envid(mail.envid);
    t->mutable_started_at()->set_seconds(std::time(nullptr));
  });
  co_return smtp::Reply{};
}

asio::awaitable<smtp::Reply> ReceiveSession::OnRcpt(const smtp::RcptTo& rcpt) {
  // Relaying is decided at connect (only mynetworks gets a session at all), so every
  // well-formed recipient is accepted, as the seed setup's after-filter smtpd does.
  auto* r = record_.add_recipients();
  r->set_address(rcpt.address);
  r->set_notify(rcpt.notify);
  r->set_orcpt(rcpt.orcpt);
  handle_->Update([&](sluice::v1::SessionMetadata& m) {
    sluice::v1::Recipient* live = m.mutable_current()->add_recipients();
    live->set_address(rcpt.address);
    live->set_notify(rcpt.notify);
    live->set_orcpt(rcpt.orcpt);
  });
  co_return smtp::Reply{};
}

asio::awaitable<smtp::Reply> ReceiveSession::OnData() {
  absl::Status room = ctx_.store->CheckAdmission(0);
  if (!room.ok()) {
    ctx_.metrics->transactions.at({"queue_full"}).Increment();
    NoteRefusal("queue_full", std::string(room.message()));
    co_return smtp::replies::QueueFull();
  }
  auto writer = ctx_.store->Begin();
  if (!writer.ok()) {
    ctx_.metrics->transactions.at({"write_error"}).Increment();
    observe::Error("queue_write_error").Kv("session", handle_->session_id()).Kv("error", std::string(writer.status().message()));
    NoteRefusal("queue_write", std::string(writer.status().message()));
    co_return smtp::replies::QueueWriteError();
  }
  writer_ = *std::move(writer);
  smtp::ReceivedInfo info;
  info.helo = facts_.helo;
  info.client_name = facts_.client_name;
  info.client_address = facts_.peer_address;  // the peer we really talked to (Postfix after-filter)
  info.by_hostname = ctx_.hostname;
  info.protocol = facts_.Protocol();
  info.id = writer_->id();
  info.tls_version = facts_.tls_version;
  info.tls_cipher = facts_.tls_cipher;
  if (record_.recipients_size() == 1) info.for_recipient = record_.recipients(0).address();
  std::time_t now = std::time(nullptr);
  HeaderCleanup::Options o;
  o.received = smtp::FormatReceived(info, now);
  o.message_id = MessageIdFor(writer_->id(), ctx_.hostname);
  o.date = smtp::Rfc5322Date(now);
  o.hold_key = ctx_.hold_mark_key ? &*ctx_.hold_mark_key : nullptr;
  o.hold_by_certificate = ctx_.trust_verified_client_cert && facts_.tls_client_verified;
  o.sender = record_.sender();
  cleanup_.emplace(std::move(o));
  handle_->Update([](sluice::v1::SessionMetadata& m) { m.set_state("data"); });
  co_return smtp::Reply{};
}

asio::awaitable<absl::Status> ReceiveSession::OnContent(std::string_view chunk) {
  if (!writer_) co_return absl::FailedPreconditionError("no queue file");
  scratch_.clear();
  cleanup_->Feed(chunk, scratch_);
  co_return writer_->Append(scratch_);
}

void ReceiveSession::Abort(std::string_view outcome) {
  if (writer_) ctx_.metrics->transactions.at({outcome}).Increment();
  writer_.reset();  // removes the data file: no partial entry
  cleanup_.reset();
  in_transaction_ = false;
  txn_.End();
}

asio::awaitable<smtp::Reply> ReceiveSession::OnDataEnd(smtp::DataOutcome outcome) {
  if (outcome != smtp::DataOutcome::kComplete || !writer_) {
    Abort(outcome == smtp::DataOutcome::kHandlerFailed ? "write_error" : "aborted");
    NoteRefusal("queue_write");
    co_return smtp::replies::QueueWriteError();
  }
  scratch_.clear();
  cleanup_->Finish(scratch_);
  if (absl::Status st = writer_->Append(scratch_); !st.ok()) {
    observe::Error("queue_write_error").Kv("session", handle_->session_id()).Kv("error", std::string(st.message()));
    Abort("write_error");
    NoteRefusal("queue_write", std::string(st.message()));
    co_return smtp::replies::QueueWriteError();
  }
  std::string session_id = smtp::XforwardKnown(xforward_.ident) ? *xforward_.ident : handle_->session_id();
  if (cleanup_->received_fields() >= static_cast<int>(ctx_.limits->Get()->hopcount_limit())) {
    // A mail loop (this stage relays, and the next hop may route the mail back here):
    // refused, as Postfix cleanup does past hopcount_limit, never queued again.
    smtp::Reply reply = smtp::replies::TooManyHops();
    observe::Warn("too_many_hops")
        .Kv("session", session_id)
        .Kv("peer", facts_.peer_address)
        .Kv("orig_client", OrigClientText())
        .Kv("received", cleanup_->received_fields())
        .Kv("reply", reply.ToString());
    Abort("too_many_hops");
    NoteRefusal("hopcount_limit");
    co_return reply;
  }
  record_.set_session_id(session_id);
  record_.set_peer_address(facts_.peer_address);
  if (smtp::XforwardKnown(xforward_.addr)) {
    sluice::v1::SessionMetadata* oc = record_.mutable_original_client();
    *oc = handle_->Snapshot();
    oc->clear_current();
  }
  if (cleanup_->ignored_hold_marks() > 0) {
    // A mark not proven to come from our filter stage: taken out, not honoured.
    ctx_.metrics->hold_marks.at({"ignored"}).Increment(cleanup_->ignored_hold_marks());
    observe::Warn("hold_mark_ignored")
        .Kv("session", session_id)
        .Kv("peer", facts_.peer_address)
        .Kv("reason", cleanup_->ignored_hold_mark_reason());
  }
  bool held = cleanup_->hold();
  // The Message-ID as queued: the sender's, or the one this cleanup added (Postfix cleanup
  // logs "ID: message-id=<…>").
  const std::string message_id = cleanup_->added_message_id().empty() ? facts_.message_id
                                                                       : cleanup_->added_message_id();
  if (held) ctx_.metrics->hold_marks.at({"honoured"}).Increment();
  if (held) {
    record_.set_state(sluice::v1::HOLD);
    record_.set_hold_reason(cleanup_->hold_reason().empty() ? "held by filter" : cleanup_->hold_reason());
  }
  uint64_t size = writer_->size();
  auto id = co_await writer_->Commit(record_);
  writer_.reset();
  cleanup_.reset();
  in_transaction_ = false;
  txn_.End();
  if (!id.ok()) {
    ctx_.metrics->transactions.at({"write_error"}).Increment();
    observe::Error("queue_write_error").Kv("session", session_id).Kv("error", std::string(id.status().message()));
    NoteRefusal("queue_write", std::string(id.status().message()));
    co_return smtp::replies::QueueWriteError();
  }
  ctx_.metrics->transactions.at({held ? "held" : "queued"}).Increment();
  // The queue logs "queued" with the queue id, session id and orig_client; this line adds the
  // hop's own facts (the peer we talked to, the client's verified name).
  observe::Info("received")
      .Kv("queue_id", *id)
      .Kv("session", session_id)
      .Kv("peer", facts_.peer_address)
      .Kv("orig_client", OrigClientText())
      .Kv("size", size)
      .Kv("message_id", message_id)
      .Kv("held", held);
  handle_->Update([&](sluice::v1::SessionMetadata& m) {
    m.set_state("command");
    m.set_transactions(m.transactions() + 1);
    m.mutable_current()->set_queue_id(*id);
  });
  co_return smtp::replies::Queued(*id);
}

asio::awaitable<void> ReceiveSession::OnReset() {
  if (writer_) Abort("aborted");
  in_transaction_ = false;
  txn_.End();
  record_.Clear();
  co_return;
}

void ReceiveSession::OnCommand() {
  const std::time_t now = std::time(nullptr);
  if (now == last_command_second_) return;  // the record holds whole seconds
  last_command_second_ = now;
  handle_->Update([now](sluice::v1::SessionMetadata& m) { m.mutable_last_command_at()->set_seconds(now); });
}

void ReceiveSession::OnLimitHit(std::string_view limit) {
  if (limit == "bare_newline" || limit == "nul_character" || limit == "unauth_pipelining") {
    ctx_.metrics->input_refusals.at({limit}).Increment();
  }
}

}  // namespace sluice::reinject
