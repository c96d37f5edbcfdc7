// services/frontend/restrictions/recipient_tables.h
//
// relay_recipients (Postfix relay_recipient_maps): files listing the valid recipients of
// the accepted domains, one a line -- "user@example.com", or "@example.com" for every
// address of that domain; anything after the first word (Postfix's "OK") and lines starting
// with "#" are ignored; keys are compared case-insensitively. A table covers the domains it
// names: a recipient in an accepted domain that the tables cover, and that they do not
// list, gets "550 5.1.1 <addr>: Recipient address rejected: User unknown in relay recipient
// table" at RCPT, from every client (as Postfix's smtpd_reject_unlisted_recipient). An
// accepted domain no table names is not judged here (unlike Postfix, which would refuse
// all of it): tables can be added one domain at a time, and a domain may rely on recipient
// verification instead.
//
// Never: judges a domain that is not accepted (relay_access refuses those); blocks on file
// I/O (the table is an immutable snapshot, reloaded by the TableWatcher).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "services/frontend/relay_policy.h"
#include "services/frontend/restrictions/check.h"
#include "services/frontend/restrictions/table_files.h"

namespace sluice::frontend::restrictions {

struct RecipientTable {
  absl::flat_hash_set<std::string> addresses;  // "user@domain", lower-cased
  absl::flat_hash_set<std::string> catchall;   // domains listed as "@domain"
  absl::flat_hash_set<std::string> covered;    // every domain named by an entry
};

// Parses the files of one relay_recipients list; the error names file and line.
absl::StatusOr<RecipientTable> ParseRecipientTable(const std::vector<FileText>& files);

enum class RecipientLookup { kNotCovered, kListed, kUnlisted };
RecipientLookup LookupRecipient(const RecipientTable& table, std::string_view recipient);

class RelayRecipients : public Check {
 public:
  RelayRecipients(std::shared_ptr<ReloadingTable<RecipientTable>> table, const RelayPolicy& relay)
      : table_(std::move(table)), relay_(relay) {}
  std::string_view name() const override { return "relay_recipients"; }
  asio::awaitable<Verdict> Evaluate(const Request& request) override;

 private:
  std::shared_ptr<ReloadingTable<RecipientTable>> table_;
  const RelayPolicy& relay_;
};

}  // namespace sluice::frontend::restrictions
