// services/frontend/restrictions/recipient_tables.cc -- see recipient_tables.h.
#include "services/frontend/restrictions/recipient_tables.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "lib/smtp/address.h"
#include "services/frontend/restrictions/table_lines.h"

namespace sluice::frontend::restrictions {
namespace {

std::string NormalDomain(std::string_view d) {
  std::string out = absl::AsciiStrToLower(absl::string_view(d.data(), d.size()));
  while (!out.empty() && out.back() == '.') out.pop_back();
  return out;
}

}  // namespace

absl::StatusOr<RecipientTable> ParseRecipientTable(const std::vector<FileText>& files) {
  RecipientTable t;
  absl::Status st = ForEachTableLine(files, [&](const TableLine& line) -> absl::Status {
    const std::string key = absl::AsciiStrToLower(absl::string_view(line.key.data(), line.key.size()));
    size_t at = key.rfind('@');
    if (at == std::string::npos || at + 1 == key.size()) {
      return line.Error("expected user@domain or @domain");
    }
    std::string domain = NormalDomain(std::string_view(key).substr(at + 1));
    if (at == 0) {
      t.catchall.insert(domain);
    } else {
      t.addresses.insert(absl::StrCat(key.substr(0, at + 1), domain));
    }
    t.covered.insert(std::move(domain));
    return absl::OkStatus();
  });
  if (!st.ok()) return st;
  return t;
}

RecipientLookup LookupRecipient(const RecipientTable& table, std::string_view recipient) {
  size_t at = recipient.rfind('@');
  if (at == std::string_view::npos) return RecipientLookup::kNotCovered;
  std::string domain = NormalDomain(recipient.substr(at + 1));
  if (!table.covered.contains(domain)) return RecipientLookup::kNotCovered;
  if (table.catchall.contains(domain)) return RecipientLookup::kListed;
  std::string local = absl::AsciiStrToLower(absl::string_view(recipient.data(), at + 1));
  return table.addresses.contains(absl::StrCat(local, domain)) ? RecipientLookup::kListed
                                                               : RecipientLookup::kUnlisted;
}

asio::awaitable<Verdict> RelayRecipients::Evaluate(const Request& request) {
  if (request.recipient.empty() || !relay_.DomainAccepted(smtp::DomainOf(request.recipient))) {
    co_return Verdict::Dunno();
  }
  std::shared_ptr<const RecipientTable> table = table_->Get();
  if (table && LookupRecipient(*table, request.recipient) == RecipientLookup::kUnlisted) {
    co_return Verdict::Refuse(Action::kReject, smtp::replies::UnknownRelayRecipient(request.recipient));
  }
  co_return Verdict::Dunno();
}

}  // namespace sluice::frontend::restrictions
