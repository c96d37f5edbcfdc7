// services/frontend/restrictions/checks_from_config.cc -- see checks_from_config.h.
#include "services/frontend/restrictions/checks_from_config.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/ascii.h"
#include "services/frontend/restrictions/access_tables.h"
#include "services/frontend/restrictions/dnsbl.h"
#include "services/frontend/restrictions/policy_client.h"
#include "services/frontend/restrictions/recipient_tables.h"
#include "services/frontend/restrictions/relay_access.h"
#include "services/frontend/restrictions/verify_recipient.h"

namespace sluice::frontend::restrictions {
namespace {

// Loads a table now and lets the watcher keep it fresh; the error names the config key.
template <typename T>
absl::StatusOr<std::shared_ptr<ReloadingTable<T>>> LoadTable(const std::string& key,
                                                             const google::protobuf::RepeatedPtrField<std::string>& paths,
                                                             typename ReloadingTable<T>::Parser parse,
                                                             TableWatcher& watcher) {
  auto table = std::make_shared<ReloadingTable<T>>(key, std::vector<std::string>(paths.begin(), paths.end()),
                                                   std::move(parse));
  absl::Status st = table->Reload();
  if (!st.ok()) return absl::InvalidArgumentError(absl::StrCat(key, ": ", st.message()));
  watcher.Watch(table);
  return table;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Restrictions>> RestrictionsFromConfig(const sluice::v1::FrontendConfig& config,
                                                                     const RelayPolicy& relay,
                                                                     const control::LimitsStore* limits,
                                                                     RecipientVerification* verification,
                                                                     FrontendMetrics* metrics, TableWatcher& watcher) {
  Restrictions::Options options;
  options.delay_reject = config.delay_reject();
  auto r = std::make_unique<Restrictions>(options, metrics);

  // An access table check at `stage`, when its files are configured.
  auto add_access = [&](Stage stage, AccessCheck::Kind kind, const std::string& key,
                        const google::protobuf::RepeatedPtrField<std::string>& files) -> absl::Status {
    if (files.empty()) return absl::OkStatus();
    auto table = LoadTable<AccessTable>(key, files, ParseAccessTable, watcher);
    if (!table.ok()) return table.status();
    r->Add(stage, std::make_shared<AccessCheck>(kind, *std::move(table)));
    return absl::OkStatus();
  };

  // The policy servers, in order, at each command of policy_protocol_states.
  std::vector<std::shared_ptr<PolicyService>> policies;
  for (const std::string& spec : config.policy_services()) {
    auto target = ParsePolicyService(spec);
    if (!target.ok()) return absl::InvalidArgumentError(absl::StrCat("policy_services: ", target.status().message()));
    policies.push_back(std::make_shared<PolicyService>(spec, *target, limits, config.policy_context(), metrics));
  }
  bool policy_at[kStageCount] = {};
  for (const std::string& state : config.policy_protocol_states()) {
    const std::string s = absl::AsciiStrToUpper(state);
    if (s == "RCPT") {
      policy_at[static_cast<int>(Stage::kRcpt)] = true;
    } else if (s == "MAIL") {
      policy_at[static_cast<int>(Stage::kMail)] = true;
    } else if (s == "DATA") {
      policy_at[static_cast<int>(Stage::kData)] = true;
    } else if (s == "END-OF-MESSAGE") {
      policy_at[static_cast<int>(Stage::kEndOfData)] = true;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("policy_protocol_states: unknown state \"", state, "\" (RCPT, MAIL, DATA, END-OF-MESSAGE)"));
    }
  }
  auto add_policies = [&](Stage stage) {
    if (!policy_at[static_cast<int>(stage)]) return;
    for (const auto& p : policies) r->Add(stage, p);
  };

  // ---- connect ----
  if (absl::Status st = add_access(Stage::kConnect, AccessCheck::Kind::kClient, "client_access", config.client_access());
      !st.ok()) {
    return st;
  }
  // DNS blocklists after client_access, so an OK there allow-lists a listed client.
  if (config.dnsbl_sites_size() > 0) {
    std::vector<DnsblSite> sites;
    for (const std::string& spec : config.dnsbl_sites()) {
      auto site = ParseDnsblSite(spec);
      if (!site.ok()) return absl::InvalidArgumentError(absl::StrCat("dnsbl_sites: ", site.status().message()));
      sites.push_back(*std::move(site));
    }
    auto lookup = DnsLookup::Create(config.dnsbl_resolver());
    if (!lookup.ok()) return absl::InvalidArgumentError(absl::StrCat("dnsbl_resolver: ", lookup.status().message()));
    r->Add(Stage::kConnect, std::make_shared<Dnsbl>(std::move(sites), config.dnsbl_threshold(), *std::move(lookup), limits,
                                                     relay, metrics));
  }
  // ---- HELO ----
  if (absl::Status st = add_access(Stage::kHelo, AccessCheck::Kind::kHelo, "helo_access", config.helo_access());
      !st.ok()) {
    return st;
  }
  // ---- MAIL ----
  if (absl::Status st = add_access(Stage::kMail, AccessCheck::Kind::kSender, "sender_access", config.sender_access());
      !st.ok()) {
    return st;
  }
  add_policies(Stage::kMail);

  // ---- RCPT ----
  // Unknown users of the accepted domains the tables cover, from every client.
  if (config.relay_recipients_size() > 0) {
    auto table = LoadTable<RecipientTable>("relay_recipients", config.relay_recipients(), ParseRecipientTable, watcher);
    if (!table.ok()) return table.status();
    r->Add(Stage::kRcpt, std::make_shared<RelayRecipients>(*std::move(table), relay));
  }
  // Never an open relay; a trusted client skips the rest of the RCPT list.
  r->Add(Stage::kRcpt, std::make_shared<RelayAccess>(relay));
  // Unknown users of the final store (verify_recipients), before any policy server.
  if (verification != nullptr) r->Add(Stage::kRcpt, std::make_shared<VerifyRecipient>(*verification, limits));
  add_policies(Stage::kRcpt);

  // ---- DATA, END-OF-MESSAGE ----
  add_policies(Stage::kData);
  add_policies(Stage::kEndOfData);
  return r;
}

}  // namespace sluice::frontend::restrictions
