// services/frontend/restrictions/access_tables.h
//
// client_access, helo_access, sender_access: Postfix's check_client_access,
// check_helo_access and check_sender_access on flat files. Each line is "KEY ACTION [text]"
// (access_action.h for the actions; table_lines.h for the line format). Keys:
//   - an address or CIDR prefix (192.0.2.1, 192.0.2.0/24, 2001:db8::/32): the client address,
//     first match in file order;
//   - a domain (example.com): that name and, as with Postfix's default
//     parent_domain_matches_subdomains, its subdomains; ".example.com" its subdomains only.
//     Matched against the client's verified reverse name, the HELO name, or the sender's
//     domain, the most specific entry first;
//   - an address (user@example.com) or a local part (user@): the sender, looked up as
//     user@domain, then the domain and its parents, then user@ (Postfix's order); "<>" is the
//     null sender (smtpd_null_access_lookup_key).
// Keys are case-insensitive. The first entry found decides; not found is DUNNO.
//
// Never: matches an address by substring; looks the client address up in DNS (names come
// from the session's verified reverse lookup only).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "lib/net/cidr.h"
#include "services/frontend/restrictions/access_action.h"
#include "services/frontend/restrictions/check.h"
#include "services/frontend/restrictions/table_files.h"

namespace sluice::frontend::restrictions {

struct AccessTable {
  std::vector<std::pair<net::CidrSet, AccessAction>> networks;   // file order
  absl::flat_hash_map<std::string, AccessAction> keys;           // lower-cased
};

absl::StatusOr<AccessTable> ParseAccessTable(const std::vector<FileText>& files);

// Lookups; null when nothing matches.
const AccessAction* FindClient(const AccessTable& t, std::string_view client_name, std::string_view address);
const AccessAction* FindHost(const AccessTable& t, std::string_view host);
const AccessAction* FindSender(const AccessTable& t, std::string_view sender);

class AccessCheck : public Check {
 public:
  enum class Kind { kClient, kHelo, kSender };
  AccessCheck(Kind kind, std::shared_ptr<ReloadingTable<AccessTable>> table) : kind_(kind), table_(std::move(table)) {}
  std::string_view name() const override;
  asio::awaitable<Verdict> Evaluate(const Request& request) override;

 private:
  Kind kind_;
  std::shared_ptr<ReloadingTable<AccessTable>> table_;
};

}  // namespace sluice::frontend::restrictions
