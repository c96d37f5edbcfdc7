// services/frontend/frontend_server.cc -- see frontend_server.h.
#include "services/frontend/frontend_server.h"

#include <ctime>

#include "absl/strings/str_cat.h"
#include "asio/co_spawn.hpp"
#include "asio/detached.hpp"
#include "lib/control/limits_store.h"
#include "lib/net/reverse_name.h"
#include "lib/observe/log.h"
#include "lib/smtp/settings_from_limits.h"
#include "services/frontend/proxy_protocol.h"

namespace sluice::frontend {
namespace {

constexpr auto kProxyHeaderTimeout = std::chrono::seconds(10);
constexpr auto kRefusalTimeout = std::chrono::seconds(10);
constexpr auto kReverseNameTimeout = std::chrono::milliseconds(5000);

}  // namespace

FrontendServer::FrontendServer(FrontendContext& ctx, net::IoPool& pool, asio::ssl::context* tls,
                               SessionRegistrar registrar, std::function<std::string()> new_session_id)
    : ctx_(ctx), pool_(pool), tls_(tls), registrar_(std::move(registrar)),
      new_session_id_(std::move(new_session_id)) {}

FrontendServer::~FrontendServer() {
  std::lock_guard<std::mutex> lock(listener_mu_);
  if (listener_) listener_->Close();
}

absl::Status FrontendServer::Start(const net::HostPort& listen) {
  std::lock_guard<std::mutex> lock(listener_mu_);
  listen_address_ = listen;
  auto l = std::make_unique<net::Listener>(pool_, [this](asio::ip::tcp::socket s) { OnAccept(std::move(s)); });
  absl::Status st = l->Listen(listen);
  if (!st.ok()) return st;
  port_ = l->port();
  listen_address_.port = port_;  // a resumed listener takes the same (maybe ephemeral) port
  listener_ = std::move(l);
  return absl::OkStatus();
}

void FrontendServer::BeginDrain() {
  draining_.store(true);
  {
    std::lock_guard<std::mutex> lock(listener_mu_);
    if (listener_) {
      listener_->Close();
      closed_listeners_.push_back(std::move(listener_));
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& c : live_) c->Drain();
}

absl::Status FrontendServer::Resume() {
  draining_.store(false);
  {
    std::lock_guard<std::mutex> lock(listener_mu_);
    if (listener_) return absl::OkStatus();
  }
  return Start(listen_address_);
}

void FrontendServer::KillAll() {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& c : live_) c->Kill(/*shutdown=*/true);
}

size_t FrontendServer::active() const {
  std::lock_guard<std::mutex> lock(mu_);
  return live_.size();
}

void FrontendServer::OnAccept(asio::ip::tcp::socket socket) {
  auto ex = socket.get_executor();
  asio::co_spawn(ex, Serve(std::move(socket)), [](std::exception_ptr e) {
    // Exceptions never cross a session boundary: a bug in one session is logged, not fatal.
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      observe::Error("session_exception").Kv("what", ex.what());
    }
  });
}

asio::awaitable<void> FrontendServer::Refuse(smtp::SmtpStream& stream, const smtp::Reply& reply) {
  co_await stream.WriteAll(reply.Format(), kRefusalTimeout);
  stream.Close();
}

asio::awaitable<void> FrontendServer::Serve(asio::ip::tcp::socket socket) {
  std::error_code ec;
  auto remote = socket.remote_endpoint(ec);
  if (ec) co_return;
  auto local = socket.local_endpoint(ec);
  auto executor = socket.get_executor();
  smtp::SmtpStream stream(std::move(socket));

  smtp::SessionFacts facts;
  facts.peer_address = remote.address().to_string();
  facts.client_address = facts.peer_address;
  facts.client_port = remote.port();
  sluice::v1::SessionMetadata meta;

  // PROXY protocol: only from trusted balancers, and then it is required.
  if (!ctx_.proxy_protocol_trusted.empty() && ctx_.proxy_protocol_trusted.Contains(facts.peer_address)) {
    std::string buf;
    ProxyHeader header;
    ProxyParseResult r;
    for (;;) {
      r = ParseProxyHeader(buf, header);
      if (r.status != ProxyParse::kNeedMore) break;
      // Read just enough: a v1 header is at most 107 bytes, a v2 one says its length.
      std::error_code rec = co_await stream.ReadInto(buf, 536, kProxyHeaderTimeout);
      if (rec) {
        r.status = ProxyParse::kError;
        r.error = rec == asio::error::timed_out ? "timeout" : rec.message();
        break;
      }
    }
    if (r.status != ProxyParse::kComplete) {
      ctx_.metrics->Connection("proxy_protocol_error");
      observe::Warn("proxy_protocol_error").Kv("peer", facts.peer_address).Kv("error", r.error);
      stream.Close();
      co_return;
    }
    stream.Unread(std::string_view(buf).substr(r.consumed));
    if (!header.local) {
      facts.client_address = header.source_address;
      facts.client_port = header.source_port;
      meta.set_proxy_source_address(facts.peer_address);
      meta.set_proxy_source_port(remote.port());
    }
  }

  if (draining_.load()) {
    ctx_.metrics->Connection("draining");
    co_await Refuse(stream, smtp::replies::ServiceNotAvailable(ctx_.hostname));
    co_return;
  }
  std::shared_ptr<const sluice::v1::Limits> limits = ctx_.limits->Get();
  bool exempt = ctx_.LimitExemptions()->Contains(facts.client_address);
  std::unique_ptr<Admission::Ticket> ticket;
  switch (ctx_.admission.Admit(facts.client_address, exempt, *limits, ticket)) {
    case AdmitDecision::kAdmit: break;
    case AdmitDecision::kMaxSessions:
      ctx_.metrics->Connection("max_sessions");
      ctx_.metrics->LimitHit("max_sessions");
      observe::Info("refused").Kv("client", facts.client_address).Kv("reason", "max_sessions");
      co_await Refuse(stream, smtp::replies::ServiceNotAvailable(ctx_.hostname));
      co_return;
    case AdmitDecision::kPerClientConnections:
      ctx_.metrics->Connection("per_client_limit");
      ctx_.metrics->LimitHit("per_client_connections");
      observe::Info("refused").Kv("client", facts.client_address).Kv("reason", "per_client_connection_limit");
      co_await Refuse(stream, smtp::replies::TooManyConnectionsFromClient(ctx_.hostname, facts.client_address));
      co_return;
    case AdmitDecision::kConnectionRate:
      ctx_.metrics->Connection("connection_rate");
      ctx_.metrics->LimitHit("connection_rate");
      observe::Info("refused").Kv("client", facts.client_address).Kv("reason", "connection_rate");
      co_await Refuse(stream, smtp::replies::ConnectionRateExceeded(ctx_.hostname, facts.client_address));
      co_return;
  }
  if (ctx_.filter_state() == FilterState::kFull) {
    // Capacity flows upstream: no room at the filter stage means no new session here.
    ctx_.metrics->Connection("backpressure");
    observe::Info("refused").Kv("client", facts.client_address).Kv("reason", "filter_full");
    co_await Refuse(stream, smtp::replies::ServiceNotAvailable(ctx_.hostname));
    co_return;
  }
  ctx_.metrics->Connection("accepted");
  ctx_.metrics->sessions_active().Increment();

  facts.session_id = new_session_id_();
  if (ctx_.config.resolve_client_names()) {
    facts.client_name = co_await net::VerifiedReverseName(executor, facts.client_address, kReverseNameTimeout);
  }
  meta.set_session_id(facts.session_id);
  meta.set_stage("frontend");
  meta.set_instance(ctx_.hostname);
  meta.set_client_address(facts.client_address);
  meta.set_client_port(facts.client_port);
  meta.set_client_name(facts.client_name);
  meta.set_peer_address(facts.peer_address);
  meta.set_peer_port(remote.port());
  meta.set_server_address(local.address().to_string());
  meta.set_server_port(local.port());
  meta.mutable_connected_at()->set_seconds(std::time(nullptr));
  meta.set_state("command");
  meta.set_source("REMOTE");
  meta.set_complete(true);

  auto control = std::make_shared<smtp::SessionControl>(executor);
  SessionRegistration reg = registrar_(meta, [control] { control->Kill(); });
  {
    std::lock_guard<std::mutex> lock(mu_);
    live_.insert(control);
  }
  if (draining_.load()) control->Drain();  // a drain that began while we were admitting
  observe::Info("connect")
      .Kv("session", facts.session_id)
      .Kv("client", facts.client_address)
      .Kv("client_name", facts.client_name)
      .Kv("port", static_cast<uint64_t>(facts.client_port));

  smtp::ServerSettings settings = smtp::SettingsFromLimits(*limits, ctx_.config.server(), ctx_.hostname);
  settings.tls = tls_;
  settings.enable_vrfy = ctx_.config.enable_vrfy();
  {
    ProxySession handler(ctx_, facts, executor, reg.update);
    co_await smtp::RunServerSession(stream, handler, facts, settings, control);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    live_.erase(control);
  }
  ctx_.metrics->sessions_active().Decrement();
  observe::Info("disconnect")
      .Kv("session", facts.session_id)
      .Kv("client", facts.client_address)
      .Kv("transactions", static_cast<uint64_t>(facts.transactions));
}

}  // namespace sluice::frontend
