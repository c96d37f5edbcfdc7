// services/frontend/recipient_verification.cc -- see recipient_verification.h.
#include "services/frontend/recipient_verification.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "asio/async_result.hpp"
#include "asio/experimental/as_tuple.hpp"
#include "asio/post.hpp"
#include "asio/steady_timer.hpp"
#include "asio/this_coro.hpp"
#include "asio/use_awaitable.hpp"
#include "grpcpp/client_context.h"
#include "lib/control/admin_channel.h"
#include "lib/net/host_port.h"
#include "lib/observe/log.h"
#include "lib/smtp/address.h"

namespace sluice::frontend {
namespace {

using AskResult = absl::StatusOr<sluice::v1::VerifyRecipientResponse>;

// Beyond the wait asked of the server: the call's own network time.
constexpr absl::Duration kCallSlack = absl::Seconds(2);
constexpr std::string_view kInProgress = "Address verification in progress";

struct Call {
  grpc::ClientContext context;
  sluice::v1::VerifyRecipientRequest request;
  sluice::v1::VerifyRecipientResponse response;
};

// The initiation as a named functor, not a lambda: g++ 12 destroys closure and aggregate
// temporaries of a co_await expression twice.
struct AskInitiation {
  sluice::v1::Verify::Stub* stub;
  std::string address;
  absl::Duration wait;
  asio::any_io_executor executor;

  template <typename Handler>
  void operator()(Handler handler) const {
    auto shared = std::make_shared<Handler>(std::move(handler));
    auto call = std::make_shared<Call>();
    call->request.set_address(address);
    call->request.set_wait_milliseconds(static_cast<uint32_t>(absl::ToInt64Milliseconds(wait)));
    call->context.set_deadline(absl::ToChronoTime(absl::Now() + wait + kCallSlack));
    asio::any_io_executor ex = executor;
    // gRPC calls back on its own thread: resume the session on its executor.
    stub->async()->VerifyRecipient(&call->context, &call->request, &call->response,
                                   [shared, call, ex](grpc::Status status) {
                                     AskResult r = status.ok() ? AskResult(std::move(call->response))
                                                               : AskResult(absl::Status(
                                                                     static_cast<absl::StatusCode>(status.error_code()),
                                                                     status.error_message()));
                                     asio::post(ex, [shared, r = std::move(r)]() mutable { (*shared)(std::move(r)); });
                                   });
  }
};

}  // namespace

RecipientVerificationMetrics::RecipientVerificationMetrics(prometheus::Registry& r)
    : results(r, "sluice_frontend_recipient_verification_total", "RCPT recipient verification by result.",
              {{"result", {"deliverable", "undeliverable", "deferred", "unverified", "unavailable"}}}),
      seconds(observe::AddHistogram(r, "sluice_frontend_recipient_verification_seconds",
                                    "Time a RCPT waited for recipient verification.",
                                    observe::LatencyBucketsSeconds())) {}

absl::StatusOr<std::unique_ptr<RecipientVerification>> RecipientVerification::Create(
    const sluice::v1::FrontendConfig& config, prometheus::Registry& registry) {
  if (!config.verify_recipients()) {
    // Its series exist at 0 all the same, so a dashboard or an alert sees "nothing verified",
    // not "no data" (the registry keeps them).
    const RecipientVerificationMetrics zeros(registry);
    return std::unique_ptr<RecipientVerification>();
  }
  auto hp = net::ParseHostPort(config.verify_service());
  if (!hp.ok() || hp->host.empty() || hp->port == 0) {
    return absl::InvalidArgumentError(absl::StrCat("verify_service: \"", config.verify_service(), "\" is not HOST:PORT"));
  }
  std::optional<RelayPolicy> domains;
  if (config.verify_domains_size() > 0) {
    // A RelayPolicy without networks is the domain list with accepted_domains' syntax.
    auto policy = RelayPolicy::Create({}, {config.verify_domains().begin(), config.verify_domains().end()});
    if (!policy.ok()) return absl::InvalidArgumentError(absl::StrCat("verify_domains: ", policy.status().message()));
    domains = *std::move(policy);
  }
  auto creds = control::AdminChannelCredentials(config.server().admin_tls());
  if (!creds.ok()) return absl::InvalidArgumentError(absl::StrCat("verify_service: ", creds.status().message()));
  control::AdminClientOptions client;
  client.credentials = *creds;
  auto stub = sluice::v1::Verify::NewStub(control::MakeAdminChannel(config.verify_service(), client));
  return std::unique_ptr<RecipientVerification>(
      new RecipientVerification(std::move(stub), config.verify_service(), std::move(domains), registry));
}

RecipientVerification::RecipientVerification(std::unique_ptr<sluice::v1::Verify::Stub> stub, std::string service,
                                             std::optional<RelayPolicy> domains, prometheus::Registry& registry)
    : stub_(std::move(stub)), service_(std::move(service)), domains_(std::move(domains)), metrics_(registry) {}

bool RecipientVerification::Applies(std::string_view recipient) const {
  std::string domain = smtp::DomainOf(recipient);
  if (domain.empty()) return false;  // "postmaster" (RFC 5321 §4.5.1 says accept it)
  return !domains_ || domains_->DomainAccepted(domain);
}

asio::awaitable<smtp::Reply> RecipientVerification::Check(std::string recipient,
                                                          std::shared_ptr<const sluice::v1::Limits> limits,
                                                          std::string session_id) {
  asio::any_io_executor executor = co_await asio::this_coro::executor;
  const uint32_t polls = std::max<uint32_t>(1, limits->address_verify_poll_count());
  const absl::Duration delay = absl::Seconds(std::max<uint32_t>(1, limits->address_verify_poll_delay_seconds()));
  const auto started = std::chrono::steady_clock::now();

  smtp::Reply reply;
  std::string_view result = "unverified";
  std::string detail(kInProgress);
  bool decided = false;
  for (uint32_t i = 0; i < polls && !decided; ++i) {
    const auto asked = std::chrono::steady_clock::now();
    AskInitiation init{stub_.get(), recipient, delay, executor};
    AskResult r = co_await asio::async_initiate<const asio::use_awaitable_t<>&, void(AskResult)>(init, asio::use_awaitable);
    if (!r.ok()) {
      result = "unavailable";
      detail = std::string(r.status().message());
      reply = smtp::replies::VerificationProblem(recipient);
      decided = true;
      break;
    }
    detail = r->reply();
    switch (r->status()) {
      case sluice::v1::ADDRESS_DELIVERABLE:
        result = "deliverable";
        decided = true;
        break;
      case sluice::v1::ADDRESS_UNDELIVERABLE:
        result = "undeliverable";
        reply = smtp::replies::UndeliverableRecipient(recipient, r->reply());
        decided = true;
        break;
      case sluice::v1::ADDRESS_DEFERRED:
        result = "deferred";
        reply = smtp::replies::UnverifiedRecipient(recipient, r->reply());
        decided = true;
        break;
      default:
        break;  // no answer yet: ask again
    }
    if (decided || i + 1 == polls) break;
    // An early "unknown" (no room for a probe, or it failed): wait out the poll delay before
    // asking again, as Postfix's poll loop sleeps between queries.
    auto remaining = absl::ToChronoNanoseconds(delay) - (std::chrono::steady_clock::now() - asked);
    if (remaining > std::chrono::nanoseconds::zero()) {
      asio::steady_timer pause(executor, remaining);
      co_await pause.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
    }
  }
  if (!decided) reply = smtp::replies::UnverifiedRecipient(recipient, kInProgress);

  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  metrics_.results.at({result}).Increment();
  metrics_.seconds.Observe(seconds);
  observe::LogLine(result == "unavailable" ? observe::Level::kWarn : observe::Level::kInfo, "recipient_verification")
      .Kv("session", session_id)
      .Kv("to", recipient)
      .Kv("result", result)
      .Kv("detail", detail)
      .Kv("service", service_)
      .Kv("seconds", seconds);
  co_return reply;
}

}  // namespace sluice::frontend
