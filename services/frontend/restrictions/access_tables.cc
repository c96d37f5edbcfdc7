// services/frontend/restrictions/access_tables.cc -- see access_tables.h.
#include "services/frontend/restrictions/access_tables.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "services/frontend/restrictions/restrictions.h"
#include "services/frontend/restrictions/table_lines.h"

namespace sluice::frontend::restrictions {
namespace {

std::string Lower(std::string_view s) { return absl::AsciiStrToLower(absl::string_view(s.data(), s.size())); }

std::string NormalName(std::string_view s) {
  std::string out = Lower(s);
  while (!out.empty() && out.back() == '.') out.pop_back();
  return out;
}

// An address or CIDR key: a '/' or something that parses as an address alone.
std::optional<net::CidrSet> NetworkKey(const std::string& key) {
  std::string text = key;
  if (key.find('/') == std::string::npos) {
    if (key.find(':') != std::string::npos) {
      text += "/128";
    } else {
      // Only a dotted quad is an address key; "example.com" is a domain.
      int dots = 0;
      for (char c : key) {
        if (c == '.') {
          ++dots;
        } else if (c < '0' || c > '9') {
          return std::nullopt;
        }
      }
      if (dots != 3) return std::nullopt;
      text += "/32";
    }
  }
  auto set = net::CidrSet::Parse({text});
  if (!set.ok()) return std::nullopt;
  return *std::move(set);
}

const AccessAction* FindKey(const AccessTable& t, const std::string& key) {
  auto it = t.keys.find(key);
  return it == t.keys.end() ? nullptr : &it->second;
}

}  // namespace

absl::StatusOr<AccessTable> ParseAccessTable(const std::vector<FileText>& files) {
  AccessTable t;
  absl::Status st = ForEachTableLine(files, [&](const TableLine& line) -> absl::Status {
    if (line.value.empty()) return line.Error("an action is missing");
    auto action = ParseAccessAction(line.value);
    if (!action.ok()) return line.Error(std::string(action.status().message()));
    if (line.key.find('/') != std::string::npos || line.key.find(':') != std::string::npos) {
      std::optional<net::CidrSet> net = NetworkKey(line.key);
      if (!net) return line.Error(absl::StrCat("not an address or CIDR prefix: ", line.key));
      t.networks.emplace_back(*std::move(net), *std::move(action));
      return absl::OkStatus();
    }
    if (std::optional<net::CidrSet> net = NetworkKey(line.key)) {
      t.networks.emplace_back(*std::move(net), *std::move(action));
      return absl::OkStatus();
    }
    t.keys.emplace(line.key == "<>" ? line.key : NormalName(line.key), *std::move(action));
    return absl::OkStatus();
  });
  if (!st.ok()) return st;
  return t;
}

const AccessAction* FindHost(const AccessTable& t, std::string_view host) {
  std::string name = NormalName(host);
  if (name.empty()) return nullptr;
  if (const AccessAction* a = FindKey(t, name)) return a;
  // Parent domains, most specific first: "example.com" and ".example.com" both match
  // subdomains (parent_domain_matches_subdomains).
  for (size_t dot = name.find('.'); dot != std::string::npos; dot = name.find('.', dot + 1)) {
    if (const AccessAction* a = FindKey(t, name.substr(dot))) return a;
    if (const AccessAction* a = FindKey(t, name.substr(dot + 1))) return a;
  }
  return nullptr;
}

const AccessAction* FindClient(const AccessTable& t, std::string_view client_name, std::string_view address) {
  if (!client_name.empty() && client_name != "unknown") {
    if (const AccessAction* a = FindHost(t, client_name)) return a;
  }
  for (const auto& [net, action] : t.networks) {
    if (net.Contains(address)) return &action;
  }
  return nullptr;
}

const AccessAction* FindSender(const AccessTable& t, std::string_view sender) {
  if (sender.empty()) return FindKey(t, "<>");
  std::string addr = Lower(sender);
  if (const AccessAction* a = FindKey(t, addr)) return a;
  size_t at = addr.rfind('@');
  if (at == std::string::npos) return nullptr;
  if (const AccessAction* a = FindHost(t, std::string_view(addr).substr(at + 1))) return a;
  return FindKey(t, addr.substr(0, at + 1));
}

std::string_view AccessCheck::name() const {
  switch (kind_) {
    case Kind::kClient: return "client_access";
    case Kind::kHelo: return "helo_access";
    case Kind::kSender: return "sender_access";
  }
  return "access";
}

asio::awaitable<Verdict> AccessCheck::Evaluate(const Request& request) {
  std::shared_ptr<const AccessTable> t = table_->Get();
  if (!t) co_return Verdict::Dunno();
  const smtp::SessionFacts& f = *request.facts;
  switch (kind_) {
    case Kind::kClient:
      if (const AccessAction* a = FindClient(*t, f.client_name, f.client_address)) {
        co_return VerdictFor(*a, NameAddr(f), "Client host", name());
      }
      break;
    case Kind::kHelo:
      if (f.helo.empty()) break;
      if (const AccessAction* a = FindHost(*t, f.helo)) co_return VerdictFor(*a, f.helo, "Helo command", name());
      break;
    case Kind::kSender:
      if (!request.in_transaction) break;
      if (const AccessAction* a = FindSender(*t, request.sender)) {
        co_return VerdictFor(*a, request.sender, "Sender address", name());
      }
      break;
  }
  co_return Verdict::Dunno();
}

}  // namespace sluice::frontend::restrictions
