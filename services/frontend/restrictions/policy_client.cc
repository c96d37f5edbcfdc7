// services/frontend/restrictions/policy_client.cc -- see policy_client.h.
#include "services/frontend/restrictions/policy_client.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "asio/execution_context.hpp"
#include "asio/experimental/as_tuple.hpp"
#include "asio/steady_timer.hpp"
#include "asio/use_awaitable.hpp"
#include "lib/control/limits_store.h"
#include "lib/net/tcp_connect.h"
#include "lib/observe/log.h"
#include "services/frontend/restrictions/access_action.h"
#include "services/frontend/restrictions/restrictions.h"

namespace sluice::frontend::restrictions {
namespace {

using Clock = std::chrono::steady_clock;

const void* ThreadKey(const asio::any_io_executor& ex) {
  return &asio::query(ex, asio::execution::context);
}

// Who a policy answer is about, for the reply text (Postfix's reply_name / reply_class).
void ReplyNames(const Request& r, std::string& name, std::string& what) {
  switch (r.command) {
    case Stage::kConnect:
      name = NameAddr(*r.facts);
      what = "Client host";
      return;
    case Stage::kHelo:
      name = r.facts->helo;
      what = "Helo command";
      return;
    case Stage::kMail:
      name = std::string(r.sender);
      what = "Sender address";
      return;
    case Stage::kRcpt:
      name = std::string(r.recipient);
      what = "Recipient address";
      return;
    case Stage::kData:
      name = "DATA";
      what = "Data command";
      return;
    case Stage::kEndOfData:
      name = "END-OF-MESSAGE";
      what = "End-of-data";
      return;
  }
}

}  // namespace

absl::StatusOr<net::HostPort> ParsePolicyService(std::string_view spec) {
  std::string_view rest = spec;
  if (absl::StartsWith(absl::string_view(rest.data(), rest.size()), "inet:")) rest.remove_prefix(5);
  if (absl::StartsWith(absl::string_view(rest.data(), rest.size()), "unix:")) {
    return absl::InvalidArgumentError(absl::StrCat(std::string(spec), ": unix sockets are not supported, use inet:HOST:PORT"));
  }
  auto hp = net::ParseHostPort(rest);
  if (!hp.ok()) return absl::InvalidArgumentError(absl::StrCat(std::string(spec), ": ", hp.status().message()));
  if (hp->host.empty() || hp->port == 0) return absl::InvalidArgumentError(absl::StrCat(std::string(spec), ": need HOST:PORT"));
  return hp;
}

PolicyAttributes PolicyRequestAttributes(const Request& r, std::string_view policy_context) {
  const smtp::SessionFacts& f = *r.facts;
  PolicyAttributes a;
  auto add = [&a](std::string name, std::string value) { a.emplace_back(std::move(name), std::move(value)); };
  add("request", "smtpd_access_policy");
  add("protocol_state", std::string(ProtocolStateName(r.command, f.esmtp)));
  add("protocol_name", f.esmtp ? "ESMTP" : "SMTP");
  add("helo_name", f.helo);
  add("queue_id", "");
  add("sender", std::string(r.sender));
  add("recipient", std::string(r.recipient));
  add("recipient_count", std::to_string(r.recipient_count));
  add("client_address", f.client_address);
  add("client_name", f.client_name.empty() ? "unknown" : f.client_name);
  add("client_port", std::to_string(f.client_port));
  add("reverse_client_name", f.client_name.empty() ? "unknown" : f.client_name);
  add("server_address", "");
  add("server_port", "");
  add("instance", std::string(r.instance));
  add("sasl_method", "");
  add("sasl_username", "");
  add("sasl_sender", "");
  add("size", std::to_string(r.size));
  add("ccert_subject", f.tls_client_verified ? f.tls_client_cn : "");
  add("ccert_issuer", "");
  add("ccert_fingerprint", "");
  add("ccert_pubkey_fingerprint", "");
  add("encryption_protocol", f.tls ? f.tls_version : "");
  add("encryption_cipher", f.tls ? f.tls_cipher : "");
  add("encryption_keysize", "");
  add("etrn_domain", "");
  add("stress", "");
  add("policy_context", std::string(policy_context));
  add("compatibility_level", "3.6");
  add("mail_version", "sluice");
  return a;
}

std::unique_ptr<PolicyService::Connection> PolicyService::TakeIdle(const void* thread, const sluice::v1::Limits& l) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = idle_.find(thread);
  if (it == idle_.end()) return nullptr;
  auto& conns = it->second;
  const Clock::time_point now = Clock::now();
  while (!conns.empty()) {
    std::unique_ptr<Connection> c = std::move(conns.back());
    conns.pop_back();
    if (now - c->opened >= std::chrono::seconds(l.policy_service_max_ttl_seconds())) {
      Count("closed_max_ttl");
    } else if (now - c->last_used >= std::chrono::seconds(l.policy_service_max_idle_seconds())) {
      Count("closed_max_idle");
    } else {
      Count("reused");
      return c;
    }
    // Expired: dropped here, on its own thread (the key says so).
  }
  return nullptr;
}

void PolicyService::GiveBack(const void* thread, std::unique_ptr<Connection> c, const sluice::v1::Limits& l) {
  if (l.policy_service_request_limit() > 0 && c->requests >= l.policy_service_request_limit()) {
    Count("closed_request_limit");
    return;
  }
  if (Clock::now() - c->opened >= std::chrono::seconds(l.policy_service_max_ttl_seconds())) {
    Count("closed_max_ttl");
    return;
  }
  c->last_used = Clock::now();
  std::lock_guard<std::mutex> lock(mu_);
  idle_[thread].push_back(std::move(c));
}

asio::awaitable<absl::StatusOr<PolicyAnswer>> PolicyService::Ask(asio::any_io_executor executor,
                                                                const std::string& request,
                                                                const sluice::v1::Limits& l) {
  const Clock::time_point deadline = Clock::now() + std::chrono::seconds(l.policy_service_timeout_seconds());
  const void* thread = ThreadKey(executor);
  std::unique_ptr<Connection> c = TakeIdle(thread, l);
  if (!c) {
    auto socket = co_await net::ConnectTcp(executor, target_, deadline - Clock::now());
    if (!socket.ok()) co_return socket.status();
    c = std::make_unique<Connection>();
    c->stream = std::make_unique<smtp::SmtpStream>(*std::move(socket));
    c->opened = Clock::now();
    Count("opened");
  }
  // Any return below without GiveBack closes the connection: an error (counted by the caller).
  std::error_code ec = co_await c->stream->WriteAll(request, deadline - Clock::now());
  if (ec) co_return absl::UnavailableError(absl::StrCat("writing to ", spec_, ": ", ec.message()));
  for (;;) {
    auto answer = DecodePolicyAnswer(c->in, l.line_length_limit_bytes());
    if (!answer.ok()) co_return answer.status();
    if (answer->complete) {
      c->in.erase(0, answer->consumed);
      ++c->requests;
      if (c->in.empty()) GiveBack(thread, std::move(c), l);  // bytes past the answer: not reusable
      co_return answer;
    }
    Clock::duration left = deadline - Clock::now();
    if (left <= Clock::duration::zero()) co_return absl::DeadlineExceededError(absl::StrCat(spec_, ": timeout"));
    ec = co_await c->stream->ReadInto(c->in, 4096, left);
    if (ec == asio::error::timed_out) co_return absl::DeadlineExceededError(absl::StrCat(spec_, ": timeout"));
    if (ec) co_return absl::UnavailableError(absl::StrCat("reading from ", spec_, ": ", ec.message()));
  }
}

asio::awaitable<Verdict> PolicyService::Evaluate(const Request& request) {
  std::shared_ptr<const sluice::v1::Limits> limits = limits_->Get();
  const std::string wire = EncodePolicyRequest(PolicyRequestAttributes(request, policy_context_));
  absl::Status last;
  for (uint32_t attempt = 1; attempt <= limits->policy_service_try_limit(); ++attempt) {
    if (attempt > 1 && limits->policy_service_retry_delay_seconds() > 0) {
      asio::steady_timer pause(request.executor);
      pause.expires_after(std::chrono::seconds(limits->policy_service_retry_delay_seconds()));
      co_await pause.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
    }
    absl::StatusOr<PolicyAnswer> answer = co_await Ask(request.executor, wire, *limits);
    if (!answer.ok()) {
      last = answer.status();
      Count("closed_error");
      observe::Warn("policy_request_failed")
          .Kv("session", request.facts->session_id)
          .Kv("server", spec_)
          .Kv("attempt", static_cast<uint64_t>(attempt))
          .Kv("error", std::string(last.message()));
      continue;
    }
    auto action = ParseAccessAction(answer->action());
    if (!action.ok()) {
      // Postfix: an action it does not know is a server configuration problem.
      observe::Warn("policy_bad_action")
          .Kv("session", request.facts->session_id)
          .Kv("server", spec_)
          .Kv("action", answer->action());
      break;
    }
    std::string name, what;
    ReplyNames(request, name, what);
    co_return VerdictFor(*action, name, what, spec_);
  }
  co_return Verdict::Refuse(Action::kDefer, smtp::replies::PolicyServerError(),
                            absl::StrCat(spec_, ": ", last.ok() ? "bad answer" : std::string(last.message())));
}

}  // namespace sluice::frontend::restrictions
