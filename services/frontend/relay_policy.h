// services/frontend/relay_policy.h
//
// Never an open relay: Postfix's `permit_mynetworks, reject_unauth_destination`. A recipient
// is accepted when the client is in mynetworks (or presented a client certificate we trust),
// or when its domain is one of accepted_domains ("example.com" is that name exactly,
// ".example.com" any subdomain of it). Everything else is "554 5.7.1 Relay access denied",
// decided at RCPT, before any filter connection opens.
//
// Never: looks at headers or XFORWARD for the client address (only the real peer, after
// PROXY protocol); matches domains case-sensitively or by substring.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "lib/net/cidr.h"

namespace sluice::frontend {

class RelayPolicy {
 public:
  static absl::StatusOr<RelayPolicy> Create(const std::vector<std::string>& mynetworks,
                                            const std::vector<std::string>& accepted_domains);

  bool ClientInMynetworks(std::string_view client_address) const { return mynetworks_.Contains(client_address); }
  // Is `recipient` (a mailbox, or "postmaster") deliverable for a client with this trust?
  bool RecipientAllowed(std::string_view recipient, bool client_trusted) const;
  bool DomainAccepted(std::string_view domain) const;

 private:
  net::CidrSet mynetworks_;
  std::vector<std::string> exact_;     // lower-cased
  std::vector<std::string> suffixes_;  // lower-cased, with the leading dot
};

}  // namespace sluice::frontend
