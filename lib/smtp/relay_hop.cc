// lib/smtp/relay_hop.cc -- see relay_hop.h.
#include "lib/smtp/relay_hop.h"

#include <map>
#include <mutex>
#include <utility>

#include "absl/strings/str_cat.h"
#include "asio/ip/address.hpp"
#include "lib/smtp/tls_context.h"

namespace sluice::smtp {
namespace {

// RFC 6066 §3: SNI carries host names only, never an address literal.
std::string SniFor(const net::HostPort& target) {
  std::error_code not_ip;
  asio::ip::make_address(target.host, not_ip);
  return not_ip ? target.host : std::string();
}

}  // namespace

absl::StatusOr<RelayTls> RelayClientTls(const sluice::v1::TlsConfig& cfg) {
  if (cfg.cert_file().empty() && cfg.ca_file().empty()) return RelayTls{};
  static std::mutex mu;
  static std::map<std::string, RelayTls>* cache = new std::map<std::string, RelayTls>();  // never freed: process-wide
  std::string key = cfg.SerializeAsString();
  std::lock_guard<std::mutex> lock(mu);
  if (auto it = cache->find(key); it != cache->end()) return it->second;
  auto ctx = MakeClientTlsContext(cfg);
  if (!ctx.ok()) return ctx.status();
  RelayTls tls;
  tls.context = std::shared_ptr<asio::ssl::context>(std::move(*ctx));
  tls.required = !cfg.ca_file().empty();
  cache->emplace(std::move(key), tls);
  return tls;
}

asio::awaitable<RelayHopOutcome> OpenRelayHop(SmtpClient& client, const net::HostPort& target, std::string_view ehlo,
                                              const RelayTls& tls) {
  // The outcome is built up in a named variable: g++ 12 destroys aggregates with non-trivial
  // members twice when they are brace-initialized inside an expression with co_await.
  RelayHopOutcome out;
  auto greeting = co_await client.Connect(target);
  if (!greeting.ok()) {
    out.error = greeting.status();
  } else if (greeting->code != 220) {
    if (greeting->transient()) {
      out.error = absl::UnavailableError(absl::StrCat(target.ToString(), " greeted with ", greeting->ToString()));
    } else {
      out.unexpected = *greeting;
    }
  }
  if (!out.ok()) {
    client.Close();
    co_return out;
  }
  out.step = "ehlo";
  auto hello = co_await client.Hello(ehlo);
  if (!hello.ok()) {
    out.error = hello.status();
  } else if (hello->code != 250) {
    out.unexpected = *hello;
  }
  if (!out.ok() || tls.context == nullptr) {
    if (!out.ok()) client.Close();
    co_return out;
  }

  out.step = "starttls";
  if (!client.capabilities().starttls) {
    if (tls.required) {
      out.error = absl::FailedPreconditionError(
          absl::StrCat(target.ToString(), " does not offer STARTTLS, and ca_file requires TLS"));
      client.Close();
    }
    co_return out;  // opportunistic: plaintext
  }
  std::string sni = SniFor(target);
  auto started = co_await client.StartTls(*tls.context, sni);
  if (!started.ok()) {
    out.error = started.status();  // the handshake failed (e.g. certificate verify failed)
    client.Close();
    co_return out;
  }
  if (started->code != 220) {
    if (tls.required) {
      out.error = absl::FailedPreconditionError(
          absl::StrCat(target.ToString(), " refused STARTTLS (", started->ToString(), "), and ca_file requires TLS"));
      client.Close();
    }
    co_return out;  // opportunistic: the session goes on in plaintext, as announced before
  }
  out.step = "tls_ehlo";
  auto again = co_await client.Hello(ehlo);
  if (!again.ok()) {
    out.error = again.status();
  } else if (again->code != 250) {
    out.unexpected = *again;
  }
  if (!out.ok()) client.Close();
  co_return out;
}

}  // namespace sluice::smtp
