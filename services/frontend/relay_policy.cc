// services/frontend/relay_policy.cc -- see relay_policy.h.
#include "services/frontend/relay_policy.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "lib/smtp/address.h"

namespace sluice::frontend {

absl::StatusOr<RelayPolicy> RelayPolicy::Create(const std::vector<std::string>& mynetworks,
                                                const std::vector<std::string>& accepted_domains) {
  RelayPolicy p;
  auto nets = net::CidrSet::Parse(mynetworks);
  if (!nets.ok()) return absl::InvalidArgumentError(absl::StrCat("mynetworks: ", nets.status().message()));
  p.mynetworks_ = *std::move(nets);
  for (const std::string& d : accepted_domains) {
    std::string lower = absl::AsciiStrToLower(d);
    if (lower.empty()) continue;
    if (lower.front() == '.') {
      if (lower.size() < 2) return absl::InvalidArgumentError("accepted_domains: '.' alone is not a domain");
      p.suffixes_.push_back(lower);
    } else {
      p.exact_.push_back(lower);
    }
  }
  return p;
}

bool RelayPolicy::DomainAccepted(std::string_view domain) const {
  std::string d = absl::AsciiStrToLower(absl::string_view(domain.data(), domain.size()));
  while (!d.empty() && d.back() == '.') d.pop_back();  // a trailing root dot names the same domain
  if (d.empty()) return false;
  for (const std::string& e : exact_) {
    if (d == e) return true;
  }
  for (const std::string& s : suffixes_) {
    if (d.size() > s.size() && absl::EndsWith(d, s)) return true;
  }
  return false;
}

bool RelayPolicy::RecipientAllowed(std::string_view recipient, bool client_trusted) const {
  if (client_trusted) return true;
  // RFC 5321 §4.5.1: "postmaster" without a domain must be accepted.
  if (absl::EqualsIgnoreCase(absl::string_view(recipient.data(), recipient.size()), "postmaster")) return true;
  std::string domain = smtp::DomainOf(recipient);
  if (domain.empty() || domain.front() == '[') return false;  // address literals: never for outsiders
  return DomainAccepted(domain);
}

}  // namespace sluice::frontend
