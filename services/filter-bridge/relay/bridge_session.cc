// services/filter-bridge/relay/bridge_session.cc -- see bridge_session.h.
#include "services/filter-bridge/relay/bridge_session.h"

#include <ctime>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "asio/co_spawn.hpp"
#include "asio/detached.hpp"
#include "asio/experimental/as_tuple.hpp"
#include "asio/steady_timer.hpp"
#include "asio/use_awaitable.hpp"
#include "lib/control/limits_store.h"
#include "lib/observe/log.h"
#include "lib/smtp/relay_hop.h"
#include "lib/smtp/xforward_session.h"
#include "services/filter-bridge/message/message_edits.h"

namespace sluice::filter_bridge {
namespace {

constexpr size_t kSendChunkBytes = 64 * 1024;
// The downstream must still answer within the sender's proxy timeout: the chain gets what is
// left of it minus this margin.
constexpr auto kDownstreamMargin = std::chrono::seconds(5);

constexpr auto kNothrow = asio::experimental::as_tuple(asio::use_awaitable);
// An early connection older than this when MAIL comes is quit and replaced: the next hop may
// have timed out an idle client by then, and a stale connection would cost the sender a 4xx.
constexpr auto kEarlyDownstreamFreshFor = std::chrono::seconds(10);

std::string_view FailureReason(const absl::Status& st) {
  switch (st.code()) {
    case absl::StatusCode::kDeadlineExceeded: return "timeout";
    case absl::StatusCode::kInternal: return "protocol";
    default: return "lost";
  }
}

std::string ParamsText(const google::protobuf::RepeatedPtrField<sluice::v1::EsmtpParameter>& params) {
  std::string out;
  for (const auto& p : params) {
    absl::StrAppend(&out, " ", p.keyword());
    if (!p.value().empty()) absl::StrAppend(&out, "=", p.value());
  }
  return out;
}

}  // namespace

// The next hop opened in the background while the upstream is still greeting: the session
// takes the client over at MAIL (OpenDownstream), or marks it abandoned when it ends first.
// Shared between the session and the opening coroutine, which never touches the session.
struct EarlyDownstream {
  explicit EarlyDownstream(const asio::any_io_executor& executor) : done(executor) {
    done.expires_at(asio::steady_timer::time_point::max());
  }
  std::unique_ptr<smtp::SmtpClient> client;
  smtp::RelayHopOutcome outcome;
  std::chrono::steady_clock::time_point ready_at;
  bool finished = false;
  bool abandoned = false;   // the session ended before taking it: quit and close
  asio::steady_timer done;  // cancelled when finished, to wake a waiting OpenDownstream
};

namespace {

asio::awaitable<void> OpenEarly(std::shared_ptr<EarlyDownstream> early, net::HostPort hop, std::string ehlo,
                                smtp::RelayTls tls) {
  early->outcome = co_await smtp::OpenRelayHop(*early->client, hop, ehlo, tls);
  early->ready_at = std::chrono::steady_clock::now();
  if (early->abandoned && early->outcome.ok()) co_await early->client->Quit(/*wait_reply=*/false);
  early->finished = true;
  early->done.cancel();
}

}  // namespace

BridgeSession::BridgeSession(BridgeContext& ctx, smtp::SessionFacts& facts, asio::any_io_executor executor,
                             std::shared_ptr<control::SessionHandle> handle)
    : ctx_(ctx), facts_(facts), executor_(std::move(executor)), handle_(std::move(handle)),
      limits_(ctx.runtime->limits().Get()), own_session_id_(handle_->session_id()) {}

BridgeSession::~BridgeSession() = default;

asio::awaitable<smtp::Reply> BridgeSession::OnHelo() {
  // Without XFORWARD the peer is the client: its EHLO name is the HELO filters see (milters
  // get it as the HELO event). XFORWARD HELO, when it came, names the original client's.
  handle_->Update([&](sluice::v1::SessionMetadata& m) {
    if (!smtp::XforwardKnown(xforward_.proto)) m.set_protocol(facts_.Protocol());
    if (!smtp::XforwardKnown(xforward_.helo)) m.set_helo(facts_.helo);
  });
  StartEarlyDownstream();
  co_return smtp::Reply{};
}

void BridgeSession::StartEarlyDownstream() {
  if (down_ || early_ || ctx_.next_hop_state() == control::Downstream::kFull) return;
  // Only for peers trusted by address: one trusted by certificate may not relay until it
  // showed one, so it must not make us open anything before MAIL.
  if (!ctx_.mynetworks.Contains(facts_.peer_address)) return;
  auto tls = smtp::RelayClientTls(ctx_.config.next_hop_tls());
  if (!tls.ok()) return;  // OpenDownstream reports it at MAIL
  smtp::ClientTimeouts t;
  t.connect = std::chrono::seconds(limits_->connect_timeout_seconds());
  t.reply = std::chrono::seconds(limits_->proxy_timeout_seconds());
  t.data_done = t.reply;
  early_ = std::make_shared<EarlyDownstream>(executor_);
  early_->client = std::make_unique<smtp::SmtpClient>(executor_, t);
  asio::co_spawn(executor_, OpenEarly(early_, ctx_.next_hop, ctx_.next_hop_ehlo, *std::move(tls)), asio::detached);
}

asio::awaitable<smtp::Reply> BridgeSession::OnXforward(const smtp::XforwardAttrs& attrs) {
  smtp::MergeXforward(xforward_, attrs);
  // IDENT is the frontend's session id: this hop is then found under it at every stage.
  handle_->Update([&](sluice::v1::SessionMetadata& m) { smtp::ApplyXforward(xforward_, m); });
  co_return smtp::Reply{};
}

void BridgeSession::NoteRefusal(std::string_view check, std::string detail) {
  refusal_note_.check = std::string(check);
  refusal_note_.detail = std::move(detail);
}

void BridgeSession::NoteFilterRefusal() {
  if (filters_ != nullptr) NoteRefusal(filters_->refused_by(), filters_->refused_detail());
}

smtp::RefusalNote BridgeSession::TakeRefusalNote() {
  smtp::RefusalNote note = std::move(refusal_note_);
  refusal_note_ = smtp::RefusalNote{};
  if (note.check.empty()) note.check = "next_hop";  // the next hop's reply, passed on
  return note;
}

void BridgeSession::DescribeClient(smtp::DialogueClient& client) const {
  // Under the frontend's session id, naming the client it talked to (XFORWARD), as a
  // Postfix after-filter smtpd logs the XFORWARD client.
  client.session_id = handle_->session_id();
  if (smtp::XforwardKnown(xforward_.addr)) {
    client.name_addr = absl::StrCat(smtp::XforwardKnown(xforward_.name) ? *xforward_.name : "unknown", "[",
                                    *xforward_.addr, "]");
  }
  if (smtp::XforwardKnown(xforward_.helo)) client.helo = *xforward_.helo;
  if (smtp::XforwardKnown(xforward_.proto)) client.proto = *xforward_.proto;
}

smtp::Reply BridgeSession::DownstreamFailed(std::string_view step, const absl::Status& st) {
  std::string_view reason = step == "connect" ? std::string_view("connect") : FailureReason(st);
  NoteRefusal("next_hop", std::string(step) + ": " + std::string(reason));
  ctx_.metrics->downstream_failures.at({reason}).Increment();
  observe::Warn("downstream_failed")
      .Kv("session", handle_->session_id())
      .Kv("next_hop", ctx_.next_hop.ToString())
      .Kv("step", step)
      .Kv("reason", reason)
      .Kv("error", std::string(st.message()));
  if (down_) down_->client->Close();
  down_.reset();
  return smtp::replies::ProxyError();
}

smtp::Reply BridgeSession::Unexpected(std::string_view step, const smtp::Reply& reply) {
  ctx_.metrics->downstream_failures.at({"unexpected_reply"}).Increment();
  NoteRefusal("next_hop", std::string(step) + ": unexpected_reply");
  observe::Warn("downstream_failed")
      .Kv("session", handle_->session_id())
      .Kv("next_hop", ctx_.next_hop.ToString())
      .Kv("step", step)
      .Kv("reason", "unexpected_reply")
      .Kv("reply", reply.ToString());
  if (down_) down_->client->Close();
  down_.reset();
  return smtp::replies::ProxyError();
}

asio::awaitable<smtp::Reply> BridgeSession::OpenDownstream() {
  if (std::shared_ptr<EarlyDownstream> early = std::move(early_)) {
    if (!early->finished) co_await early->done.async_wait(kNothrow);
    if (std::chrono::steady_clock::now() - early->ready_at < kEarlyDownstreamFreshFor) {
      down_ = std::make_unique<smtp::HopConnection>(std::move(early->client));
      if (!early->outcome.error.ok()) co_return DownstreamFailed(early->outcome.step, early->outcome.error);
      if (early->outcome.unexpected) co_return Unexpected(early->outcome.step, *early->outcome.unexpected);
      ctx_.metrics->downstream_connections.at({"opened"}).Increment();
      co_return smtp::Reply{};
    }
    // Opened (or failed) too long ago: start afresh.
    if (early->outcome.ok()) co_await early->client->Quit(/*wait_reply=*/false);
  }
  smtp::ClientTimeouts t;
  t.connect = std::chrono::seconds(limits_->connect_timeout_seconds());
  t.reply = std::chrono::seconds(limits_->proxy_timeout_seconds());
  t.data_done = t.reply;
  auto client = std::make_unique<smtp::SmtpClient>(executor_, t);
  down_ = std::make_unique<smtp::HopConnection>(std::move(client));
  // Connect, greeting, EHLO, and STARTTLS with our client certificate when next_hop_tls
  // asks (lib/smtp/relay_hop.h; the context is built once per process).
  auto tls = smtp::RelayClientTls(ctx_.config.next_hop_tls());
  if (!tls.ok()) co_return DownstreamFailed("starttls", tls.status());
  smtp::RelayHopOutcome hop = co_await smtp::OpenRelayHop(*down_->client, ctx_.next_hop, ctx_.next_hop_ehlo, *tls);
  if (!hop.error.ok()) co_return DownstreamFailed(hop.step, hop.error);
  if (hop.unexpected) co_return Unexpected(hop.step, *hop.unexpected);
  ctx_.metrics->downstream_connections.at({"opened"}).Increment();
  co_return smtp::Reply{};
}

asio::awaitable<void> BridgeSession::RetireSpentDownstream() {
  if (!down_) co_return;
  std::string_view limit = smtp::ReuseLimitReached(*down_, *limits_, smtp::HopConnection::Clock::now());
  // A next hop that (unlike Postfix) kept XFORWARD past the last transaction's end would
  // apply it to this one, which has none of its own: a new connection has no such past.
  bool stale_xforward = down_->sent_xforward && xforward_.empty();
  if (limit.empty() && !stale_xforward && down_->client->connected()) co_return;
  if (!limit.empty()) ctx_.metrics->limit_hits.at({limit}).Increment();
  co_await down_->client->Quit(/*wait_reply=*/false);
  down_.reset();
}

asio::awaitable<smtp::Reply> BridgeSession::StartDownstreamTransaction(const std::string& mail_line,
                                                                     const std::vector<std::string>& rcpt_lines,
                                                                     std::vector<smtp::Reply>& rcpt_replies) {
  co_await RetireSpentDownstream();
  for (;;) {
    if (!down_) {
      smtp::Reply opened = co_await OpenDownstream();
      if (!opened.empty()) co_return opened;
    } else {
      ctx_.metrics->downstream_connections.at({"reused"}).Increment();
    }
    DownstreamStart start = co_await SendMailDownstream(mail_line, rcpt_lines, rcpt_replies);
    if (start.stale) {
      // The next hop closed the kept connection while it sat idle (a restart, its own idle
      // timeout); nothing of this transaction was answered on it: start over on a new one.
      ctx_.metrics->downstream_connections.at({"replaced"}).Increment();
      observe::Info("downstream_replaced").Kv("session", handle_->session_id());
      co_await DropDownstream();
      continue;  // a new connection is never stale: this loops at most twice
    }
    co_return start.reply;
  }
}

asio::awaitable<BridgeSession::DownstreamStart> BridgeSession::SendMailDownstream(
    const std::string& mail_line, const std::vector<std::string>& rcpt_lines, std::vector<smtp::Reply>& rcpt_replies) {
  DownstreamStart out;
  smtp::SmtpClient& down = *down_->client;
  // The original client, when the next hop takes XFORWARD (Postfix after-filter smtpd with
  // smtpd_authorized_xforward_hosts), before every MAIL.
  std::vector<std::string> xforward;
  if (!xforward_.empty() && down.capabilities().xforward) {
    xforward = smtp::EncodeXforward(xforward_, down.capabilities().xforward_attrs);
  }
  smtp::TransactionStart start = co_await smtp::StartTransaction(*down_, std::move(xforward), mail_line, rcpt_lines);
  if (start.stale) {
    out.stale = true;
  } else if (!start.error.ok()) {
    out.reply = DownstreamFailed(start.step, start.error);
  } else if (start.unexpected) {
    out.reply = Unexpected(start.step, *start.unexpected);
  } else if (!start.mail.positive()) {
    // The next hop refused the sender: that is the answer to the recipients it came with.
    if (start.mail.code == 421 || !down_->client->connected()) co_await DropDownstream();
    out.reply = std::move(start.mail);
  } else {
    rcpt_replies = std::move(start.rcpts);
  }
  co_return out;
}

asio::awaitable<smtp::Reply> BridgeSession::OnMail(const smtp::MailFrom& mail) {
  limits_ = ctx_.runtime->limits().Get();
  uint32_t capacity = limits_->max_filter_transactions() > 0 ? limits_->max_filter_transactions()
                                                             : limits_->max_sessions();
  if (ctx_.runtime->transactions_in_flight() >= capacity || ctx_.next_hop_state() == control::Downstream::kFull) {
    ctx_.metrics->downstream_failures.at({"capacity"}).Increment();
    NoteRefusal("backpressure");
    co_return smtp::replies::TransactionTempUnavailable();
  }
  if (ctx_.spool_space != nullptr) {
    // The content will spool beyond spool_memory_bytes: refuse now rather than fill the
    // emptyDir and be evicted with every session.
    absl::Status room = ctx_.spool_space->Admit(
        mail.size.value_or(0), limits_->spool_max_bytes(),
        smtp::SpoolMinFreeBytes(limits_->spool_min_free_bytes(), limits_->message_size_limit_bytes()));
    if (!room.ok()) {
      ctx_.metrics->limit_hits.at({"spool_space"}).Increment();
      NoteRefusal("spool_space", std::string(room.message()));
      co_return smtp::replies::QueueFull();
    }
  }
  envelope_.Clear();
  envelope_.set_mail_from(mail.address);
  for (const auto& p : mail.params) {
    auto* e = envelope_.add_mail_parameters();
    e->set_keyword(p.keyword);
    e->set_value(p.value);
  }
  envelope_.set_body_type(mail.body);
  envelope_.set_smtputf8(mail.smtputf8);
  envelope_.set_ret(mail.ret);
  envelope_.set_envid(mail.envid);
  envelope_.mutable_started_at()->set_seconds(std::time(nullptr));
  // The envelope filters first: a sender they refuse never reaches the next hop.
  if (smtp::Reply refused = co_await FiltersAtMail(); !refused.empty()) co_return refused;
  mail_line_ = absl::StrCat("MAIL FROM:<", mail.address, ">", smtp::FormatParams(mail.params));
  // The next hop hears of the transaction with its first recipient, MAIL and RCPT in one
  // write (as the frontend does towards us): no round trip of its own for MAIL; a refusal of
  // MAIL there is that recipient's reply.
  mail_pending_ = true;
  in_transaction_ = true;
  txn_ = ctx_.runtime->BeginTransaction();
  handle_->Update([&](sluice::v1::SessionMetadata& m) {
    *m.mutable_current() = envelope_;
    m.set_state("transaction");
  });
  co_return smtp::replies::Ok();
}

asio::awaitable<smtp::Reply> BridgeSession::OnRcpt(const smtp::RcptTo& rcpt) {
  sluice::v1::Recipient rc;
  rc.set_address(rcpt.address);
  rc.set_notify(rcpt.notify);
  rc.set_orcpt(rcpt.orcpt);
  for (const auto& p : rcpt.params) {
    auto* e = rc.add_parameters();
    e->set_keyword(p.keyword);
    e->set_value(p.value);
  }
  if (filters_ != nullptr) {
    // Refused by a filter: this recipient only, and the next hop never hears of it.
    smtp::Reply refused = co_await filters_->Rcpt(*filter_session_, envelope_, rc, FilterDeadline());
    if (!refused.empty()) {
      NoteFilterRefusal();
      co_return refused;
    }
  }
  std::string line = absl::StrCat("RCPT TO:<", rcpt.address, ">", smtp::FormatParams(rcpt.params));
  absl::StatusOr<smtp::Reply> r;
  if (mail_pending_) {
    // No recipient taken yet, so no transaction downstream: it starts with this one (and
    // starts again with the next recipient when this fails).
    std::vector<std::string> lines;
    lines.push_back(std::move(line));
    std::vector<smtp::Reply> replies;
    smtp::Reply failed = co_await StartDownstreamTransaction(mail_line_, lines, replies);
    if (!failed.empty()) co_return failed;
    mail_pending_ = false;
    r = std::move(replies.front());
  } else {
    if (!down_) co_return smtp::replies::ProxyError();  // the connection that took the others is gone
    r = co_await down_->client->Command(line);
    if (!r.ok()) co_return DownstreamFailed("rcpt", r.status());
    if (r->intermediate() || r->code < 200) co_return Unexpected("rcpt", *r);
  }
  if (r->positive()) {
    *envelope_.add_recipients() = rc;
    handle_->Update([&](sluice::v1::SessionMetadata& m) { *m.mutable_current()->add_recipients() = rc; });
  }
  co_return *r;
}

asio::awaitable<smtp::Reply> BridgeSession::OnData() {
  if (!down_ || mail_pending_) co_return smtp::replies::ProxyError();  // an accepted RCPT started it
  if (filters_ != nullptr) {
    smtp::Reply refused = co_await filters_->Data(*filter_session_, envelope_, FilterDeadline());
    if (!refused.empty()) {
      NoteFilterRefusal();
      co_return refused;
    }
  }
  auto r = co_await down_->client->Command("DATA");
  if (!r.ok()) co_return DownstreamFailed("data", r.status());
  if (r->code != 354) {
    if (r->transient() || r->permanent()) co_return *r;
    co_return Unexpected("data", *r);
  }
  SpoolOptions so;
  so.memory_limit = limits_->spool_memory_bytes();
  so.dir = ctx_.config.spool_dir();
  if (ctx_.spool_space != nullptr) so.disk_bytes = &ctx_.spool_space->held();
  spool_ = std::make_unique<MessageSpool>(so);
  in_data_ = true;
  handle_->Update([](sluice::v1::SessionMetadata& m) { m.set_state("data"); });
  co_return *r;
}

asio::awaitable<absl::Status> BridgeSession::OnContent(std::string_view chunk) {
  ctx_.metrics->spool_bytes.Increment(static_cast<double>(chunk.size()));
  co_return spool_->Append(chunk);
}

sluice::v1::SessionMetadata BridgeSession::SessionForFilters() {
  sluice::v1::SessionMetadata m = handle_->Snapshot();
  m.set_complete(false);  // only what XFORWARD said, until the owner's record arrives
  return m;
}

asio::awaitable<sluice::v1::SessionMetadata> BridgeSession::FetchFilterSession() {
  sluice::v1::SessionMetadata session = SessionForFilters();
  // The owner's full record, for filters that need more than XFORWARD told (none: no fetch).
  if (ctx_.session_lookup != nullptr && ctx_.chain->size() > 0 && smtp::XforwardKnown(xforward_.ident)) {
    auto full = co_await ctx_.session_lookup->Fetch(facts_.peer_address, *xforward_.ident);
    if (full) {
      session = *std::move(full);
      session.set_complete(true);
    }
  }
  co_return session;
}

Clock::time_point BridgeSession::FilterDeadline() const {
  return Clock::now() + std::chrono::seconds(limits_->proxy_timeout_seconds()) - kDownstreamMargin;
}

asio::awaitable<smtp::Reply> BridgeSession::FiltersAtMail() {
  co_await CloseFilters();  // a transaction left open upstream: its conversations end
  filters_ = ctx_.chain->BeginTransaction();
  if (filters_ == nullptr) co_return smtp::Reply{};
  // Fetched now, with this transaction's XFORWARD: the milters' connect and HELO facts.
  sluice::v1::SessionMetadata session = co_await FetchFilterSession();
  filter_session_ = std::move(session);
  smtp::Reply refused = co_await filters_->Mail(*filter_session_, envelope_, FilterDeadline());
  if (!refused.empty()) {
    NoteFilterRefusal();
    co_await CloseFilters();
  }
  co_return refused;
}

asio::awaitable<void> BridgeSession::CloseFilters() {
  if (std::unique_ptr<ChainTransaction> filters = std::move(filters_)) co_await filters->Close();
  filter_session_.reset();
}

asio::awaitable<absl::StatusOr<smtp::Reply>> BridgeSession::SendMessage(const Edits& edits) {
  // The edited header is small and built at once; the body streams from the spool in chunks
  // so memory does not grow with the message.
  std::string head;
  const MessageSpool* body = spool_.get();
  uint64_t begin = 0;
  if (!edits.empty()) {
    for (const HeaderField& f : EditedHeaders(*spool_, edits)) {
      head.append(f.raw());
      if (!f.ends_with_crlf()) head.append("\r\n");
    }
    if (edits.body != nullptr || spool_->header_section().has_separator) head.append("\r\n");
    if (edits.body != nullptr) body = edits.body.get();
    begin = edits.body != nullptr ? 0 : spool_->body_offset();
  }
  if (!head.empty()) {
    if (absl::Status st = co_await down_->client->SendContent(head); !st.ok()) co_return st;
  }
  std::string chunk;
  for (uint64_t off = begin; off < body->size(); off += kSendChunkBytes) {
    chunk.clear();
    if (absl::Status st = body->ReadAt(off, kSendChunkBytes, &chunk); !st.ok()) co_return st;
    if (absl::Status st = co_await down_->client->SendContent(chunk); !st.ok()) co_return st;
  }
  co_return co_await down_->client->FinishContent();
}

asio::awaitable<smtp::Reply> BridgeSession::ReplayEnvelope(const sluice::v1::Transaction& envelope) {
  std::vector<std::string> lines;
  for (const auto& rc : envelope.recipients()) {
    lines.push_back(absl::StrCat("RCPT TO:<", rc.address(), ">", ParamsText(rc.parameters())));
  }
  std::vector<smtp::Reply> replies;
  smtp::Reply r = co_await StartDownstreamTransaction(
      absl::StrCat("MAIL FROM:<", envelope.mail_from(), ">", ParamsText(envelope.mail_parameters())), lines, replies);
  if (!r.empty()) co_return r;
  size_t accepted = 0;
  for (size_t i = 0; i < replies.size(); ++i) {
    if (replies[i].positive()) {
      ++accepted;
    } else {
      observe::Warn("recipient_refused_after_filter")
          .Kv("session", handle_->session_id())
          .Kv("recipient", envelope.recipients(static_cast<int>(i)).address())
          .Kv("reply", replies[i].ToString());
    }
  }
  if (accepted == 0) {
    // Every recipient the filters left was refused (each refusal logged above): a 4xx, and
    // the half-open transaction downstream is dropped.
    co_await DropDownstream();
    NoteRefusal("next_hop", "every recipient refused after the filters changed the envelope");
    co_return smtp::replies::ProxyError();
  }
  auto d = co_await down_->client->Command("DATA");
  if (!d.ok()) co_return DownstreamFailed("data", d.status());
  if (d->code != 354) co_return d->transient() || d->permanent() ? *d : Unexpected("data", *d);
  co_return smtp::Reply{};
}

asio::awaitable<void> BridgeSession::DropDownstream() {
  if (down_) down_->client->Close();
  down_.reset();
  co_return;
}

void BridgeSession::EndTransaction(std::string_view verdict) {
  if (in_transaction_) ctx_.metrics->transactions.at({verdict}).Increment();
  in_transaction_ = false;
  mail_pending_ = false;
  in_data_ = false;
  spool_.reset();
  txn_.End();
  if (down_) down_->idle_since = smtp::HopConnection::Clock::now();
  handle_->Update([](sluice::v1::SessionMetadata& m) {
    m.set_state("command");
    m.set_transactions(m.transactions() + 1);
  });
  ForgetXforward();
}

void BridgeSession::ForgetXforward() {
  if (xforward_.empty()) return;
  xforward_ = smtp::XforwardAttrs{};
  // The connection's own record again: its id (no longer the client's, which may now be
  // carried by another connection or be gone), the peer as the client, its HELO.
  handle_->Update([&](sluice::v1::SessionMetadata& m) {
    m.set_session_id(own_session_id_);
    m.set_client_address(facts_.peer_address);
    m.set_client_port(facts_.client_port);
    m.clear_client_name();
    m.clear_source();
    m.set_helo(facts_.helo);
    m.set_protocol(facts_.Protocol());
  });
}

asio::awaitable<smtp::Reply> BridgeSession::OnDataEnd(smtp::DataOutcome outcome) {
  if (outcome != smtp::DataOutcome::kComplete || !spool_ || !down_) {
    co_await CloseFilters();
    co_await DropDownstream();  // never let the next hop see an end for this content
    EndTransaction(outcome == smtp::DataOutcome::kHandlerFailed ? "downstream_error" : "aborted");
    NoteRefusal("spool");
    co_return smtp::replies::LocalError();
  }
  auto started = std::chrono::steady_clock::now();
  if (absl::Status st = spool_->Finish(); !st.ok()) {
    co_await CloseFilters();
    co_await DropDownstream();
    EndTransaction("downstream_error");
    observe::Error("spool_failed").Kv("session", handle_->session_id()).Kv("error", std::string(st.message()));
    NoteRefusal("spool", std::string(st.message()));
    co_return smtp::replies::LocalError();
  }

  sluice::v1::SessionMetadata session;
  if (filter_session_) {
    session = *filter_session_;  // fetched at MAIL for the envelope filters
  } else {
    session = co_await FetchFilterSession();
  }
  ChainInput input;
  input.session = &session;
  input.envelope = envelope_;
  input.spool = spool_.get();
  // The frontend's (or a Postfix before-filter's) own hold mark, from a peer we trust.
  if (ctx_.xforward_hosts.Contains(facts_.peer_address)) input.upstream_hold = UpstreamHoldMark(*spool_);
  input.deadline = std::chrono::steady_clock::now() + std::chrono::seconds(limits_->proxy_timeout_seconds()) -
                   kDownstreamMargin;
  ChainResult result = co_await ctx_.chain->Run(std::move(input), filters_.get());
  co_await CloseFilters();

  smtp::Reply reply;
  std::string_view verdict = ActionName(result.action);
  switch (result.action) {
    case ChainResult::Action::kReject:
    case ChainResult::Action::kTempfail:
      co_await DropDownstream();
      reply = result.reply;
      if (!result.results.empty()) NoteRefusal(result.results.back().filter(), result.results.back().detail());
      break;
    case ChainResult::Action::kDiscard:
      co_await DropDownstream();
      reply = smtp::replies::Discarded();
      break;
    case ChainResult::Action::kDeliver: {
      if (result.envelope_changed) {
        // The next hop already has the old envelope: start over with the new one.
        co_await DropDownstream();
        smtp::Reply replayed = co_await ReplayEnvelope(result.envelope);
        if (!replayed.empty()) {
          reply = replayed;
          verdict = "downstream_error";
          break;
        }
      }
      auto r = co_await SendMessage(result.edits);
      if (!r.ok()) {
        reply = DownstreamFailed("end_of_data", r.status());
        verdict = "downstream_error";
      } else if (r->intermediate() || r->code < 200) {
        reply = Unexpected("end_of_data", *r);
        verdict = "downstream_error";
      } else {
        reply = *r;  // the next hop's verdict is the sender's
      }
      break;
    }
  }
  ctx_.metrics->relay_seconds.Observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  // "name=verdict", and ":rule" for the rule that decided (a rules filter).
  std::string filters;
  for (size_t i = 0; i < static_cast<size_t>(result.results.size()); ++i) {
    const auto& fr = result.results[i];
    absl::StrAppend(&filters, filters.empty() ? "" : ",", fr.filter(), "=", fr.verdict());
    if (i < result.rules.size() && !result.rules[i].empty()) absl::StrAppend(&filters, ":", result.rules[i]);
  }
  const std::string queue_id = reply.positive() ? smtp::QueueIdFromReply(reply) : std::string();
  observe::Info("transaction")
      .Kv("session", handle_->session_id())
      .Kv("client", session.client_address())
      .Kv("from", envelope_.mail_from())
      .Kv("nrcpt", static_cast<uint64_t>(envelope_.recipients_size()))
      .Kv("size", spool_->size())
      .Kv("message_id", facts_.message_id)
      .Kv("queue_id", queue_id.empty() ? std::string("NOQUEUE") : queue_id)
      .Kv("verdict", verdict)
      .Kv("filters", filters)
      .Kv("metadata", session.complete() ? "complete" : "xforward")
      .Kv("reply", reply.ToString());
  handle_->Update([&](sluice::v1::SessionMetadata& m) {
    auto* cur = m.mutable_current();
    cur->set_size_bytes(spool_->size());
    cur->set_final_reply(reply.ToString());
    for (const auto& fr : result.results) *cur->add_verdicts() = fr;
  });
  EndTransaction(verdict);
  co_return reply;
}

asio::awaitable<void> BridgeSession::OnReset() {
  co_await CloseFilters();
  if (in_data_) {
    co_await DropDownstream();
  } else if (down_ && down_->client->connected() && in_transaction_ && !mail_pending_) {
    // The transaction begun at the next hop ends there too (none began while MAIL waits
    // for its first recipient).
    auto r = co_await down_->client->Command("RSET");
    if (!r.ok() || !r->positive()) co_await DropDownstream();
  }
  if (in_transaction_) EndTransaction("aborted");
}

void BridgeSession::OnCommand() {
  const std::time_t now = std::time(nullptr);
  if (now == last_command_second_) return;  // the record holds whole seconds
  last_command_second_ = now;
  handle_->Update([now](sluice::v1::SessionMetadata& m) { m.mutable_last_command_at()->set_seconds(now); });
}

void BridgeSession::OnLimitHit(std::string_view limit) {
  if (limit == "bare_newline" || limit == "nul_character" || limit == "unauth_pipelining") {
    ctx_.metrics->limit_hits.at({limit}).Increment();
  }
}

void BridgeSession::OnKill() {
  // A wait on the next hop ends now; the pending call fails (451 upstream), nothing is
  // delivered because the final dot was not sent, and the session ends with 421.
  if (down_) down_->client->Close();
}

asio::awaitable<void> BridgeSession::OnClose() {
  if (std::shared_ptr<EarlyDownstream> early = std::move(early_)) {
    // Never taken (no MAIL came): quit it now, or once it is open.
    early->abandoned = true;
    if (early->finished && early->outcome.ok()) co_await early->client->Quit(/*wait_reply=*/false);
  }
  co_await OnReset();
  if (down_) {
    co_await down_->client->Quit(/*wait_reply=*/false);
    down_.reset();
  }
}

}  // namespace sluice::filter_bridge
