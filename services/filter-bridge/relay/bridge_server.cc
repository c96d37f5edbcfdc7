// services/filter-bridge/relay/bridge_server.cc -- see bridge_server.h.
#include "services/filter-bridge/relay/bridge_server.h"

#include "lib/control/limits_store.h"
#include "lib/control/session_id.h"
#include "lib/observe/log.h"
#include "lib/smtp/peer_trust.h"
#include "lib/smtp/settings_from_limits.h"

namespace sluice::filter_bridge {
namespace {

// With trust by certificate a peer outside mynetworks gets a session (it can only show its
// certificate after STARTTLS), but it may relay only once one verified: MAIL is refused
// otherwise, as reinject does.
class CertificateGuardedSession : public BridgeSession {
 public:
  CertificateGuardedSession(BridgeContext& ctx, smtp::SessionFacts& facts, asio::any_io_executor executor,
                            std::shared_ptr<control::SessionHandle> handle)
      : BridgeSession(ctx, facts, std::move(executor), std::move(handle)), facts_(facts) {}

  asio::awaitable<smtp::Reply> OnMail(const smtp::MailFrom& mail) override {
    if (auto refused = smtp::RefuseUntrustedRelay(facts_, /*address_trusted=*/false)) co_return *refused;
    co_return co_await BridgeSession::OnMail(mail);
  }

 private:
  smtp::SessionFacts& facts_;
};

}  // namespace

BridgeServer::BridgeServer(BridgeContext& ctx, net::IoPool& pool, asio::ssl::context* tls)
    : ctx_(ctx), tls_(tls),
      server_(pool, [this](smtp::SmtpStream& s, smtp::SessionFacts& f, std::shared_ptr<smtp::SessionControl> c) {
        return Accept(s, f, std::move(c));
      }) {}

asio::awaitable<smtp::AcceptedSession> BridgeServer::Accept(smtp::SmtpStream& stream, smtp::SessionFacts& facts,
                                                            std::shared_ptr<smtp::SessionControl> control) {
  smtp::AcceptedSession out;
  bool trust_cert = ctx_.config.server().trust_verified_client_cert();
  const bool address_trusted = ctx_.mynetworks.Contains(facts.peer_address);
  if (!address_trusted && !trust_cert) {
    ctx_.metrics->connections.at({"not_authorized"}).Increment();
    observe::Warn("refused").Kv("peer", facts.peer_address).Kv("reason", "not_in_mynetworks");
    co_await smtp::SessionServer::Refuse(stream, smtp::replies::ClientNotAuthorized());
    co_return out;
  }
  std::shared_ptr<const sluice::v1::Limits> limits = ctx_.runtime->limits().Get();
  // At max_sessions an upstream connection resting between transactions (the frontend keeps
  // them for reuse) gives way to the new one: idle connections never hold the stage full.
  bool full = ctx_.runtime->sessions().active() >= limits->max_sessions();
  if (server_.draining() || (full && !server_.EndLongestResting()) ||
      ctx_.next_hop_state() == control::Downstream::kFull) {
    ctx_.metrics->connections.at({"draining"}).Increment();
    co_await smtp::SessionServer::Refuse(stream, smtp::replies::ServiceNotAvailable(ctx_.hostname));
    co_return out;
  }
  if (full) ctx_.metrics->limit_hits.at({"max_sessions"}).Increment();
  ctx_.metrics->connections.at({"accepted"}).Increment();
  ctx_.metrics->sessions_active.Increment();
  sluice::v1::SessionMetadata meta;
  meta.set_session_id(control::NewSessionId());  // replaced by XFORWARD IDENT when it comes
  meta.set_stage("filter-bridge");
  meta.set_client_address(facts.peer_address);
  meta.set_client_port(facts.client_port);
  meta.set_peer_address(facts.peer_address);
  meta.set_peer_port(facts.client_port);
  meta.set_state("command");
  meta.set_complete(false);
  std::shared_ptr<control::SessionHandle> handle = ctx_.runtime->sessions().Register(meta);
  facts.session_id = handle->session_id();
  handle->SetKiller([control] { control->Kill(); });
  // Now full? A resting connection makes room at once, so the stage keeps reporting room
  // (WatchStatus) while any upstream connection merely rests.
  if (ctx_.runtime->sessions().active() >= limits->max_sessions() && server_.EndLongestResting()) {
    ctx_.metrics->limit_hits.at({"max_sessions"}).Increment();
  }
  ctx_.runtime->RecheckAccepting();

  // Never more than the next stage takes (effective_limits.h): EHLO SIZE included.
  out.settings = smtp::SettingsFromLimits(*ctx_.runtime->effective_limits().Get(), ctx_.config.server(), ctx_.hostname);
  out.settings.tls = tls_;
  out.settings.xforward_allowed = ctx_.xforward_hosts.Contains(facts.peer_address);
  out.settings.xforward_by_certificate = trust_cert;
  if (address_trusted) {
    out.handler = std::make_unique<BridgeSession>(ctx_, facts, stream.executor(), handle);
  } else {
    out.handler = std::make_unique<CertificateGuardedSession>(ctx_, facts, stream.executor(), handle);
  }
  BridgeContext& ctx = ctx_;
  out.on_end = [&ctx] {
    ctx.metrics->sessions_active.Decrement();
    ctx.runtime->RecheckAccepting();
  };
  co_return out;
}

}  // namespace sluice::filter_bridge
