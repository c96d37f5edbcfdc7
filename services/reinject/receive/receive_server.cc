// services/reinject/receive/receive_server.cc -- see receive_server.h.
#include "services/reinject/receive/receive_server.h"

#include <ctime>

#include "lib/control/limits_store.h"
#include "lib/control/session_id.h"
#include "lib/net/reverse_name.h"
#include "lib/observe/log.h"
#include "lib/smtp/peer_trust.h"
#include "lib/smtp/settings_from_limits.h"

namespace sluice::reinject {
namespace {

// Refuses MAIL from a peer that is neither in mynetworks nor trusted by certificate (only
// reachable when certificate trust lets untrusted addresses connect at all).
class GuardedSession : public ReceiveSession {
 public:
  GuardedSession(ReceiveContext& ctx, smtp::SessionFacts& facts, std::shared_ptr<control::SessionHandle> handle,
                 bool address_trusted, std::function<void()> on_end)
      : ReceiveSession(ctx, facts, std::move(handle)),
        facts_(facts), address_trusted_(address_trusted), on_end_(std::move(on_end)) {}
  ~GuardedSession() override { on_end_(); }

  asio::awaitable<smtp::Reply> OnMail(const smtp::MailFrom& mail) override {
    if (auto refused = smtp::RefuseUntrustedRelay(facts_, address_trusted_)) co_return *refused;
    co_return co_await ReceiveSession::OnMail(mail);
  }

 private:
  smtp::SessionFacts& facts_;
  bool address_trusted_;
  std::function<void()> on_end_;
};

}  // namespace

ReceiveServer::ReceiveServer(ReceiveContext& ctx, control::StageRuntime& runtime, net::IoPool& pool,
                             asio::ssl::context* tls)
    : ctx_(ctx), runtime_(runtime), tls_(tls),
      server_(pool, [this](smtp::SmtpStream& s, smtp::SessionFacts& f, std::shared_ptr<smtp::SessionControl> c) {
        return Accept(s, f, std::move(c));
      }) {}

asio::awaitable<smtp::AcceptedSession> ReceiveServer::Accept(smtp::SmtpStream& stream, smtp::SessionFacts& facts,
                                                             std::shared_ptr<smtp::SessionControl> control) {
  smtp::AcceptedSession out;
  bool address_trusted = ctx_.mynetworks.Contains(facts.peer_address);
  if (!address_trusted && !ctx_.trust_verified_client_cert) {
    ctx_.metrics->connections.at({"not_authorized"}).Increment();
    observe::Warn("refused").Kv("peer", facts.peer_address).Kv("reason", "not_in_mynetworks");
    co_await smtp::SessionServer::Refuse(stream, smtp::replies::ClientNotAuthorized());
    co_return out;
  }
  if (server_.draining()) {
    ctx_.metrics->connections.at({"draining"}).Increment();
    co_await smtp::SessionServer::Refuse(stream, smtp::replies::ServiceNotAvailable(ctx_.hostname));
    co_return out;
  }
  ctx_.metrics->connections.at({"accepted"}).Increment();
  ctx_.metrics->sessions_active.Increment();
  facts.client_name = co_await net::VerifiedReverseName(stream.executor(), facts.peer_address,
                                                        std::chrono::milliseconds(2000));
  sluice::v1::SessionMetadata meta;
  meta.set_session_id(control::NewSessionId());  // replaced by XFORWARD IDENT when it comes
  meta.set_stage("reinject");
  meta.set_client_address(facts.peer_address);
  meta.set_client_port(facts.client_port);
  meta.set_client_name(facts.client_name);
  meta.set_peer_address(facts.peer_address);
  meta.set_peer_port(facts.client_port);
  meta.set_state("command");
  meta.set_complete(false);
  auto handle = runtime_.sessions().Register(meta);
  facts.session_id = handle->session_id();
  handle->SetKiller([control] { control->Kill(); });
  runtime_.RecheckAccepting();

  std::shared_ptr<const sluice::v1::Limits> limits = runtime_.limits().Get();
  out.settings = smtp::SettingsFromLimits(*limits, ctx_.server, ctx_.hostname);
  out.settings.tls = tls_;
  bool xforward_ok = ctx_.xforward_hosts.Contains(facts.peer_address);
  out.settings.xforward_allowed = xforward_ok;
  out.settings.xforward_by_certificate = ctx_.trust_verified_client_cert;
  ReceiveContext& ctx = ctx_;
  control::StageRuntime& runtime = runtime_;
  out.handler = std::make_unique<GuardedSession>(ctx_, facts, handle, address_trusted, [&ctx, &runtime] {
    ctx.metrics->sessions_active.Decrement();
    runtime.RecheckAccepting();
  });
  co_return out;
}

}  // namespace sluice::reinject
