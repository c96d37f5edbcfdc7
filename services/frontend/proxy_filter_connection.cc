// services/frontend/proxy_filter_connection.cc
//
// ProxySession's filter connection: where a transaction gets one (the pool of idle ones,
// else a new connection: connect, greeting, EHLO, STARTTLS per filter_tls), how the
// transaction starts on it (RSET when its last transaction ended early, XFORWARD with this
// client's facts, the saved MAIL and the first recipients -- one write when the filter
// announces PIPELINING, one command at a time when it does not), the one replacement of a
// pooled connection the filter closed while it sat idle, and how it is given back.
//
// Never: replaces a connection once anything of this transaction was answered on it;
// pipelines to a filter that did not announce PIPELINING; gives back a connection in the
// middle of DATA, after a failure, or after the filter said 421.
#include "absl/strings/str_cat.h"
#include "lib/control/limits_store.h"
#include "lib/observe/log.h"
#include "lib/smtp/relay_hop.h"
#include "services/frontend/filter_pool.h"
#include "services/frontend/proxy_session.h"

namespace sluice::frontend {
namespace {

std::string_view FailureReason(const absl::Status& st) {
  switch (st.code()) {
    case absl::StatusCode::kDeadlineExceeded: return "timeout";
    case absl::StatusCode::kInternal: return "protocol";
    default: return "lost";
  }
}

}  // namespace

smtp::ClientTimeouts ProxySession::FilterTimeouts() const {
  smtp::ClientTimeouts t;
  t.connect = std::chrono::seconds(limits_->connect_timeout_seconds());
  t.reply = std::chrono::seconds(limits_->proxy_timeout_seconds());
  t.data_done = t.reply;
  return t;
}

smtp::XforwardAttrs ProxySession::XforwardFacts() const {
  smtp::XforwardAttrs a;
  a.name = facts_.client_name.empty() || facts_.client_name == "unknown" ? std::string(smtp::kXforwardUnavailable)
                                                                         : facts_.client_name;
  a.addr = facts_.client_address;
  a.port = std::to_string(facts_.client_port);
  a.proto = facts_.esmtp ? "ESMTP" : "SMTP";
  a.helo = facts_.helo.empty() ? std::string(smtp::kXforwardUnavailable) : facts_.helo;
  a.ident = facts_.session_id;
  a.source = "REMOTE";
  return a;
}

smtp::Reply ProxySession::ProxyFailed(std::string_view stage, const absl::Status& status) {
  std::string_view reason = stage == "connect" ? std::string_view("connect") : FailureReason(status);
  ctx_.metrics->ProxyFailure(reason);
  observe::Warn("proxy_failed")
      .Kv("session", facts_.session_id)
      .Kv("client", facts_.client_address)
      .Kv("filter", ctx_.filter.ToString())
      .Kv("step", stage)
      .Kv("reason", reason)
      .Kv("error", std::string(status.message()));
  NoteRefusal("proxy", std::string(stage) + ": " + std::string(reason));
  DropFilter();
  return smtp::replies::ProxyError();
}

smtp::Reply ProxySession::Unexpected(std::string_view stage, const smtp::Reply& reply) {
  // Postfix: a 2xx/3xx where it makes no sense is "451 4.3.0 Error: queue file write error".
  ctx_.metrics->ProxyFailure("unexpected_reply");
  observe::Warn("proxy_failed")
      .Kv("session", facts_.session_id)
      .Kv("client", facts_.client_address)
      .Kv("filter", ctx_.filter.ToString())
      .Kv("step", stage)
      .Kv("reason", "unexpected_reply")
      .Kv("reply", reply.ToString());
  NoteRefusal("proxy", std::string(stage) + ": unexpected_reply");
  DropFilter();
  return smtp::replies::ProxyError();
}

asio::awaitable<smtp::Reply> ProxySession::OpenFilter(const std::vector<std::string>& rcpt_lines,
                                                      std::vector<smtp::Reply>& rcpt_replies) {
  if (ctx_.filter_state() == control::Downstream::kFull) {
    // The filter stage said it has no room: tell the client now instead of letting it wait.
    ctx_.metrics->ProxyFailure("backpressure");
    observe::Info("proxy_backpressure").Kv("session", facts_.session_id).Kv("client", facts_.client_address);
    NoteRefusal("backpressure");
    co_return smtp::replies::TransactionTempUnavailable();
  }
  auto started = std::chrono::steady_clock::now();
  for (bool pooled = true;; pooled = false) {
    rcpt_replies.clear();
    smtp::Reply failed = co_await AcquireFilter(pooled);
    if (!failed.empty()) co_return failed;
    FilterStart start = co_await StartOnFilter(rcpt_lines, rcpt_replies);
    if (start.stale) {
      // The filter closed this pooled connection while it sat idle (a restart, its own idle
      // timeout): nothing of the transaction was answered, so it starts over on a new one.
      ctx_.metrics->FilterConnection("replaced");
      observe::Info("filter_connection_replaced").Kv("session", facts_.session_id);
      DropFilter();
      continue;
    }
    if (!start.reply.empty()) {
      // The filter refused the sender (or the start failed, and the connection is gone).
      if (t_->filter && start.reply.code == 421) DropFilter();
      co_await ReleaseFilter(/*ended_with_final_reply=*/false);
      co_return start.reply;
    }
    ctx_.metrics->proxy_connect_seconds().Observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    co_return smtp::Reply{};
  }
}

asio::awaitable<smtp::Reply> ProxySession::AcquireFilter(bool pooled) {
  if (pooled && ctx_.filter_pool != nullptr) {
    t_->filter = ctx_.filter_pool->Take(executor_);
    if (t_->filter) {
      t_->filter->client->set_timeouts(FilterTimeouts());  // this transaction's snapshot of the limits
      ctx_.metrics->FilterConnection("reused");
      co_return smtp::Reply{};
    }
  }
  auto client = std::make_unique<smtp::SmtpClient>(executor_, FilterTimeouts());
  t_->filter = std::make_unique<smtp::HopConnection>(std::move(client));
  // Connect, greeting, EHLO, and STARTTLS with our client certificate when filter_tls asks.
  smtp::RelayHopOutcome hop =
      co_await smtp::OpenRelayHop(*t_->filter->client, ctx_.filter, ctx_.proxy_ehlo, ctx_.filter_tls);
  if (!hop.error.ok()) co_return ProxyFailed(hop.step, hop.error);
  if (hop.unexpected) co_return Unexpected(hop.step, *hop.unexpected);
  ctx_.metrics->FilterConnection("opened");
  co_return smtp::Reply{};
}

asio::awaitable<ProxySession::FilterStart> ProxySession::StartOnFilter(const std::vector<std::string>& rcpt_lines,
                                                                       std::vector<smtp::Reply>& rcpt_replies) {
  FilterStart out;
  smtp::SmtpClient& f = *t_->filter->client;
  // This client's XFORWARD: a kept connection carried other clients' transactions before,
  // and the filter forgets XFORWARD at each transaction's end (as Postfix does).
  std::vector<std::string> xforward;
  if (f.capabilities().xforward) xforward = smtp::EncodeXforward(XforwardFacts(), f.capabilities().xforward_attrs);
  smtp::TransactionStart start = co_await smtp::StartTransaction(*t_->filter, std::move(xforward), t_->mail_line,
                                                                 rcpt_lines);
  if (start.stale) {
    out.stale = true;
  } else if (!start.error.ok()) {
    out.reply = ProxyFailed(start.step, start.error);
  } else if (start.unexpected) {
    out.reply = Unexpected(start.step, *start.unexpected);
  } else if (!start.mail.positive()) {
    out.reply = std::move(start.mail);  // the filter refused the sender: the client's answer
  } else {
    rcpt_replies = std::move(start.rcpts);
  }
  co_return out;
}

asio::awaitable<void> ProxySession::ReleaseFilter(bool ended_with_final_reply) {
  if (!t_ || !t_->filter) co_return;
  std::unique_ptr<smtp::HopConnection> hop = std::move(t_->filter);
  if (ctx_.filter_pool != nullptr && hop->client->connected()) {
    bool clean = ended_with_final_reply;
    if (!clean) {
      // RSET now, not with the next transaction: the filter would hold this one open (and
      // count it against its capacity) for as long as the connection rests.
      auto r = co_await hop->client->Command("RSET");
      clean = r.ok() && r->code == 250;
    }
    if (clean) {
      ctx_.filter_pool->Return(executor_, std::move(hop));
      co_return;
    }
  }
  // Postfix ends the filter connection with QUIT and does not wait for the 221.
  co_await hop->client->Quit(/*wait_reply=*/false);
}

void ProxySession::DropFilter() {
  if (t_ && t_->filter) {
    t_->filter->client->Close();
    t_->filter.reset();
  }
}

}  // namespace sluice::frontend
