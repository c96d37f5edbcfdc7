// services/frontend/restrictions/policy_client.h
//
// check_policy_service: one policy server of policy_services, asked with Postfix's policy
// delegation protocol (SMTPD_POLICY_README) -- the standard attribute set for the command
// being answered, "name=value" lines and an empty line -- whose "action=" answer is judged
// as an access table's right-hand side (access_action.h): OK, DUNNO, REJECT, DEFER,
// DEFER_IF_PERMIT, DEFER_IF_REJECT, 4xx/5xx text, PREPEND (the header reaches the message),
// HOLD (the message goes to reinject's hold queue), DISCARD (accepted, delivered nowhere),
// WARN; FILTER/REDIRECT/BCC are logged as unsupported.
//
// Connections are kept and reused, one pool per io thread (a session's coroutine only ever
// uses its own thread's), within policy_service_max_idle/max_ttl/request_limit. A request
// that fails (connect, write, read, timeout, malformed answer) is tried again on a new
// connection up to policy_service_try_limit times, policy_service_retry_delay apart; then
// the command gets "451 4.3.5 Server configuration problem", as Postfix's
// smtpd_policy_service_default_action.
//
// Never: lets a policy server's failure become a 5xx; waits longer than
// policy_service_timeout_seconds per attempt; shares a connection between two requests at
// the same time.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "lib/net/host_port.h"
#include "lib/smtp/stream.h"
#include "services/frontend/frontend_metrics.h"
#include "services/frontend/restrictions/check.h"
#include "services/frontend/restrictions/policy_codec.h"
#include "sluice/v1/limits.pb.h"

namespace sluice::control {
class LimitsStore;
}

namespace sluice::frontend::restrictions {

// "inet:HOST:PORT" (or HOST:PORT) to a target; unix: sockets are not supported.
absl::StatusOr<net::HostPort> ParsePolicyService(std::string_view spec);

// The request Postfix sends for `request` (protocol_state from request.command).
PolicyAttributes PolicyRequestAttributes(const Request& request, std::string_view policy_context);

class PolicyService : public Check {
 public:
  PolicyService(std::string spec, net::HostPort target, const control::LimitsStore* limits, std::string policy_context,
                FrontendMetrics* metrics)
      : spec_(std::move(spec)), target_(std::move(target)), limits_(limits), policy_context_(std::move(policy_context)),
        metrics_(metrics) {}
  std::string_view name() const override { return "policy"; }
  asio::awaitable<Verdict> Evaluate(const Request& request) override;

 private:
  struct Connection {
    std::unique_ptr<smtp::SmtpStream> stream;
    std::chrono::steady_clock::time_point opened;
    std::chrono::steady_clock::time_point last_used;
    uint32_t requests = 0;
    std::string in;  // bytes read past the last answer (none expected)
  };
  // One attempt: a pooled or new connection, the request, the answer.
  asio::awaitable<absl::StatusOr<PolicyAnswer>> Ask(asio::any_io_executor executor, const std::string& request,
                                                   const sluice::v1::Limits& limits);
  std::unique_ptr<Connection> TakeIdle(const void* thread, const sluice::v1::Limits& limits);
  void GiveBack(const void* thread, std::unique_ptr<Connection> c, const sluice::v1::Limits& limits);
  void Count(std::string_view event) {
    if (metrics_ != nullptr) metrics_->PolicyConnection(event);
  }

  const std::string spec_;
  const net::HostPort target_;
  const control::LimitsStore* limits_;
  const std::string policy_context_;
  FrontendMetrics* metrics_;  // may be null (tests)
  std::mutex mu_;
  absl::flat_hash_map<const void*, std::vector<std::unique_ptr<Connection>>> idle_;  // by io_context
};

}  // namespace sluice::frontend::restrictions
