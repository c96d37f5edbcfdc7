// services/frontend/restrictions/relay_access.h
//
// The RCPT check that keeps the frontend from being an open relay, Postfix's
// "permit_mynetworks, reject_unauth_destination" (smtpd_relay_restrictions): a trusted
// client (mynetworks, or a verified client certificate) is permitted -- the rest of the RCPT
// list is skipped for it, as after permit_mynetworks; a recipient in accepted_domains (or
// "postmaster") gets no opinion, so the later checks judge it; anything else is
// "554 5.7.1 <rcpt>: Relay access denied".
//
// Never: looks at headers or XFORWARD for the client (only the real peer, after PROXY).
#pragma once

#include "services/frontend/relay_policy.h"
#include "services/frontend/restrictions/check.h"

namespace sluice::frontend::restrictions {

class RelayAccess : public Check {
 public:
  explicit RelayAccess(const RelayPolicy& policy) : policy_(policy) {}
  std::string_view name() const override { return "relay_access"; }
  asio::awaitable<Verdict> Evaluate(const Request& request) override;

 private:
  const RelayPolicy& policy_;
};

}  // namespace sluice::frontend::restrictions
