// services/frontend/recipient_verification.h
//
// Postfix reject_unverified_recipient at RCPT: is there a mailbox behind this address? The
// frontend asks reinject's sluice.v1.Verify (verify_service), which answers from its cache
// or probes the final destination over the delivery route. Up to address_verify_poll_count
// asks, each waiting at most address_verify_poll_delay_seconds for the answer (an answer
// that comes sooner ends the wait). What the client is told (Postfix's texts, with
// unverified_recipient_reject_code = 550):
//
//   deliverable                        the RCPT goes on (to the filter)
//   undeliverable (a 5xx to RCPT)      550 5.1.1 <a>: Recipient address rejected: undeliverable address: REPLY
//   deferred (a 4xx to RCPT)           450 4.1.1 <a>: Recipient address rejected: unverified address: REPLY
//   no answer in time / probe failed   450 4.1.1 <a>: Recipient address rejected: unverified address: Address verification in progress
//   Verify unreachable or too slow     450 4.1.1 <a>: Recipient address rejected: address verification problem
//
// Which recipients: with verify_recipients on, those of clients outside mynetworks (not
// trusted by certificate either) whose domain is in verify_domains (empty: every accepted
// domain); never the bare "postmaster" (RFC 5321 §4.5.1).
//
// Never: answers 5xx unless the destination refused the address with 5xx; shows the client
// why a probe failed (it names internal hosts; the log has it); blocks an io thread.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "asio/awaitable.hpp"
#include "lib/observe/metrics.h"
#include "lib/smtp/reply.h"
#include "services/frontend/relay_policy.h"
#include "sluice/v1/config.pb.h"
#include "sluice/v1/limits.pb.h"
#include "sluice/v1/verify.grpc.pb.h"

namespace sluice::frontend {

// sluice_frontend_recipient_verification_total{result}: deliverable, undeliverable,
//   deferred, unverified (no answer in time), unavailable (Verify unreachable)
// sluice_frontend_recipient_verification_seconds: the RCPT's wait for the answer
struct RecipientVerificationMetrics {
  explicit RecipientVerificationMetrics(prometheus::Registry& r);
  observe::Labelled<prometheus::Counter> results;
  prometheus::Histogram& seconds;
};

class RecipientVerification {
 public:
  // Null when verify_recipients is off (its metrics are registered all the same, at 0).
  // INVALID_ARGUMENT for a bad verify_service, verify_domains or admin_tls.
  static absl::StatusOr<std::unique_ptr<RecipientVerification>> Create(const sluice::v1::FrontendConfig& config,
                                                                        prometheus::Registry& registry);

  // Is `recipient` one this check looks at? (verify_domains; the client's trust is the
  // caller's to judge.)
  bool Applies(std::string_view recipient) const;

  // The reply refusing `recipient`, or an empty Reply when it is deliverable.
  asio::awaitable<smtp::Reply> Check(std::string recipient, std::shared_ptr<const sluice::v1::Limits> limits,
                                     std::string session_id);

 private:
  RecipientVerification(std::unique_ptr<sluice::v1::Verify::Stub> stub, std::string service,
                        std::optional<RelayPolicy> domains, prometheus::Registry& registry);

  std::unique_ptr<sluice::v1::Verify::Stub> stub_;
  std::string service_;                // verify_service, for logs
  std::optional<RelayPolicy> domains_;  // verify_domains as a domain list; none: every domain
  RecipientVerificationMetrics metrics_;
};

}  // namespace sluice::frontend
