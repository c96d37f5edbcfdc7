// services/frontend/restrictions/checks_from_config.h
//
// Builds the frontend's restriction lists from its config, in one fixed order that reads
// like a Postfix main.cf (the order is the contract, docs/restrictions.md shows it):
//
//   connect (smtpd_client_restrictions):    client_access, dnsbl (dnsbl_sites)
//   HELO    (smtpd_helo_restrictions):      helo_access
//   MAIL    (smtpd_sender_restrictions):    sender_access, policy_services (if MAIL is in
//                                           policy_protocol_states)
//   RCPT    (smtpd_recipient_restrictions): relay_recipients (every client, as Postfix's
//                                           smtpd_reject_unlisted_recipient), relay_access
//                                           (permit_mynetworks, reject_unauth_destination),
//                                           verify_recipient (verify_recipients:
//                                           reject_unverified_recipient),
//                                           policy_services (check_policy_service, in order)
//   DATA, END-OF-MESSAGE:                   policy_services (if listed in
//                                           policy_protocol_states)
//
// To add a check: write a class deriving from Check (check.h) in its own file here, named
// for its job (recipient_tables.cc, policy_client.cc), build it from its config fields
// below and Add() it to its stage at the place the list above says, and add it to that list
// and to docs/restrictions.md. Evaluate runs on the session's thread as a coroutine and may
// do I/O; a check that fails answers 4xx (Action::kDefer). Its refusals are logged and
// counted by Restrictions -- do not log them again.
//
// Never: reorders existing checks silently (the order decides who wins); starts I/O here
// (checks connect lazily, on a session's executor).
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "services/frontend/frontend_metrics.h"
#include "services/frontend/recipient_verification.h"
#include "services/frontend/relay_policy.h"
#include "services/frontend/restrictions/restrictions.h"
#include "services/frontend/restrictions/table_files.h"
#include "sluice/v1/config.pb.h"

namespace sluice::control {
class LimitsStore;
}

namespace sluice::frontend::restrictions {

// `relay` and `verification` (null when verify_recipients is off) must outlive the result
// (they are the FrontendContext's). Tables are loaded now (an
// unreadable or malformed file is an error) and given to `watcher` to keep fresh.
absl::StatusOr<std::unique_ptr<Restrictions>> RestrictionsFromConfig(const sluice::v1::FrontendConfig& config,
                                                                     const RelayPolicy& relay,
                                                                     const control::LimitsStore* limits,
                                                                     RecipientVerification* verification,
                                                                     FrontendMetrics* metrics, TableWatcher& watcher);

}  // namespace sluice::frontend::restrictions
