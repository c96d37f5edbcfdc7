// services/frontend/frontend_server.cc -- see frontend_server.h.
#include "services/frontend/frontend_server.h"

#include <ctime>

#include "lib/control/effective_limits.h"
#include "lib/control/limits_store.h"
#include "lib/net/reverse_name.h"
#include "lib/observe/log.h"
#include "lib/smtp/settings_from_limits.h"
#include "services/frontend/proxy_protocol.h"

namespace sluice::frontend {
namespace {

constexpr auto kProxyHeaderTimeout = std::chrono::seconds(10);
constexpr auto kReverseNameTimeout = std::chrono::milliseconds(5000);

// The handler plus what must live exactly as long as the session.
class FrontendSession : public ProxySession {
 public:
  FrontendSession(FrontendContext& ctx, smtp::SessionFacts& facts, asio::any_io_executor ex, SessionRegistration reg,
                  std::unique_ptr<Admission::Ticket> ticket)
      : ProxySession(ctx, facts, std::move(ex), std::move(reg.update)), keepalive_(std::move(reg.keepalive)),
        ticket_(std::move(ticket)) {}

 private:
  std::shared_ptr<void> keepalive_;  // the registry entry (see SessionRegistration)
  std::unique_ptr<Admission::Ticket> ticket_;
};

}  // namespace

FrontendServer::FrontendServer(FrontendContext& ctx, net::IoPool& pool, asio::ssl::context* tls,
                               SessionRegistrar registrar, std::function<std::string()> new_session_id)
    : ctx_(ctx), tls_(tls), registrar_(std::move(registrar)), new_session_id_(std::move(new_session_id)),
      server_(pool, [this](smtp::SmtpStream& s, smtp::SessionFacts& f, std::shared_ptr<smtp::SessionControl> c) {
        return Accept(s, f, std::move(c));
      }) {}

asio::awaitable<bool> FrontendServer::ReadProxyHeader(smtp::SmtpStream& stream, smtp::SessionFacts& facts,
                                                      sluice::v1::SessionMetadata& meta) {
  std::string buf;
  ProxyHeader header;
  ProxyParseResult r;
  for (;;) {
    r = ParseProxyHeader(buf, header);
    if (r.status != ProxyParse::kNeedMore) break;
    // A v1 header is at most 107 bytes, a v2 one says its length: never read far ahead.
    std::error_code ec = co_await stream.ReadInto(buf, 536, kProxyHeaderTimeout);
    if (ec) {
      r.status = ProxyParse::kError;
      r.error = ec == asio::error::timed_out ? "timeout" : ec.message();
      break;
    }
  }
  if (r.status != ProxyParse::kComplete) {
    ctx_.metrics->Connection("proxy_protocol_error");
    observe::Warn("proxy_protocol_error").Kv("peer", facts.peer_address).Kv("error", r.error);
    co_return false;
  }
  stream.Unread(std::string_view(buf).substr(r.consumed));
  if (!header.local) {
    meta.set_proxy_source_address(facts.peer_address);
    meta.set_proxy_source_port(facts.client_port);
    facts.client_address = header.source_address;
    facts.client_port = header.source_port;
  }
  co_return true;
}

asio::awaitable<std::string> FrontendServer::ClientName(asio::any_io_executor executor, const std::string& address,
                                                        const sluice::v1::Limits& limits) {
  auto now = net::ReverseNameCache::Clock::now();
  const bool cached = limits.client_name_cache_seconds() > 0;
  if (cached) {
    if (std::optional<std::string> name = ctx_.client_names.Get(address, now)) co_return *name;
  }
  std::optional<std::string> name = co_await net::LookUpVerifiedReverseName(executor, address, kReverseNameTimeout);
  if (!name) co_return "unknown";  // timed out: not an answer to keep
  if (cached && !ctx_.client_names.Put(address, *name, std::chrono::seconds(limits.client_name_cache_seconds()),
                                       limits.client_name_cache_max_entries(), now)) {
    ctx_.metrics->LimitHit("client_name_cache_max_entries");
  }
  co_return *name;
}

asio::awaitable<smtp::AcceptedSession> FrontendServer::Accept(smtp::SmtpStream& stream, smtp::SessionFacts& facts,
                                                              std::shared_ptr<smtp::SessionControl> control) {
  smtp::AcceptedSession out;
  sluice::v1::SessionMetadata meta;
  meta.set_peer_address(facts.peer_address);
  meta.set_peer_port(facts.client_port);
  if (!ctx_.proxy_protocol_trusted.empty() && ctx_.proxy_protocol_trusted.Contains(facts.peer_address)) {
    if (!co_await ReadProxyHeader(stream, facts, meta)) co_return out;
  }

  auto refuse = [&](std::string_view outcome, std::string_view limit, const smtp::Reply& reply) {
    ctx_.metrics->Connection(outcome);
    if (!limit.empty()) ctx_.metrics->LimitHit(limit);
    observe::Info("refused").Kv("client", facts.client_address).Kv("reason", outcome).Kv("reply", reply.ToString());
    return smtp::SessionServer::Refuse(stream, reply);
  };
  if (server_.draining()) {
    co_await refuse("draining", "", smtp::replies::ServiceNotAvailable(ctx_.hostname));
    co_return out;
  }
  std::shared_ptr<const sluice::v1::Limits> limits = ctx_.limits->Get();
  bool exempt = ctx_.LimitExemptions()->Contains(facts.client_address);
  std::unique_ptr<Admission::Ticket> ticket;
  AdmitDecision admitted = co_await ctx_.admission.Admit(facts.client_address, exempt, *limits, ticket);
  switch (admitted) {
    case AdmitDecision::kAdmit: break;
    case AdmitDecision::kMaxSessions:
      co_await refuse("max_sessions", "max_sessions", smtp::replies::ServiceNotAvailable(ctx_.hostname));
      co_return out;
    case AdmitDecision::kPerClientConnections:
      co_await refuse("per_client_limit", "per_client_connections",
                      smtp::replies::TooManyConnectionsFromClient(ctx_.hostname, facts.client_address));
      co_return out;
    case AdmitDecision::kConnectionRate:
      co_await refuse("connection_rate", "connection_rate",
                      smtp::replies::ConnectionRateExceeded(ctx_.hostname, facts.client_address));
      co_return out;
  }
  if (ctx_.filter_state() == control::Downstream::kFull) {
    // Capacity flows upstream: no room at the filter stage means no new session here.
    co_await refuse("backpressure", "", smtp::replies::ServiceNotAvailable(ctx_.hostname));
    co_return out;
  }
  ctx_.metrics->Connection("accepted");
  ctx_.metrics->sessions_active().Increment();

  auto executor = stream.executor();
  facts.session_id = new_session_id_();
  if (ctx_.config.resolve_client_names()) facts.client_name = co_await ClientName(executor, facts.client_address, *limits);
  // Restriction checks start their slow work (DNS lists) now; without delay_reject the
  // connect list decides here, its refusal replacing the greeting (Postfix).
  const restrictions::Restrictions& checks = *ctx_.restrictions;
  checks.Prefetch(facts, executor);
  if (checks.HasChecksFor(restrictions::Stage::kConnect)) {
    restrictions::Request req;
    req.command = restrictions::Stage::kConnect;
    req.facts = &facts;
    req.client_trusted = ctx_.relay.ClientInMynetworks(facts.client_address);
    req.executor = executor;
    restrictions::Actions ignored;
    smtp::Reply refused = co_await checks.Evaluate(req, ignored);
    if (!refused.empty()) {
      ctx_.metrics->sessions_active().Decrement();
      co_await smtp::SessionServer::Refuse(stream, refused);
      co_return out;
    }
  }
  meta.set_session_id(facts.session_id);
  meta.set_stage("frontend");
  meta.set_instance(ctx_.hostname);
  meta.set_client_address(facts.client_address);
  meta.set_client_port(facts.client_port);
  meta.set_client_name(facts.client_name);
  std::error_code ec;
  auto local = stream.socket().local_endpoint(ec);
  if (!ec) {
    meta.set_server_address(local.address().to_string());
    meta.set_server_port(local.port());
  }
  meta.mutable_connected_at()->set_seconds(std::time(nullptr));
  meta.set_state("command");
  meta.set_source("REMOTE");
  meta.set_complete(true);
  SessionRegistration reg = registrar_(meta, [control] { control->Kill(); });
  observe::Info("connect")
      .Kv("session", facts.session_id)
      .Kv("client", facts.client_address)
      .Kv("client_name", facts.client_name)
      .Kv("port", static_cast<uint64_t>(facts.client_port));

  // EHLO SIZE and the size, header and recipient limits: never more than the stages behind
  // take (effective_limits.h), so what we accept is not refused permanently further on.
  std::shared_ptr<const sluice::v1::Limits> data_limits =
      ctx_.effective_limits != nullptr ? ctx_.effective_limits->Get() : limits;
  out.settings = smtp::SettingsFromLimits(*data_limits, ctx_.config.server(), ctx_.hostname);
  out.settings.tls = tls_;
  out.settings.enable_vrfy = ctx_.config.enable_vrfy();
  // The greet wait is for strangers (postscreen_access_list = permit_mynetworks).
  if (!ctx_.relay.ClientInMynetworks(facts.client_address)) {
    out.settings.greet_wait = std::chrono::seconds(limits->greet_wait_seconds());
  }
  out.handler = std::make_unique<FrontendSession>(ctx_, facts, executor, std::move(reg), std::move(ticket));
  out.on_end = [this, &facts] {
    ctx_.metrics->sessions_active().Decrement();
    observe::Info("disconnect")
        .Kv("session", facts.session_id)
        .Kv("client", facts.client_address)
        .Kv("transactions", static_cast<uint64_t>(facts.transactions));
  };
  co_return out;
}

}  // namespace sluice::frontend
