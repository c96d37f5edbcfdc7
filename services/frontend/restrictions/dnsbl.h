// services/frontend/restrictions/dnsbl.h
//
// DNS blocklists with weights, a small postscreen: dnsbl_sites in postscreen_dnsbl_sites
// syntax -- "domain[=filter][*weight]", the filter matching the answer's addresses octet by
// octet, each octet a number, "[n..m]" or "[a;b;c]" (e.g. "bl.example=127.0.0.[2..11]*3");
// weight 1 by default, negative to allow-list. The client's address (IPv4 reversed by octet,
// IPv6 by nibble) is looked up under every site in parallel as soon as it connects
// (Prefetch); at evaluation each site's answer is awaited up to dnsbl_timeout_seconds from
// then, a late one counting as "not listed" (as postscreen). The weights of the sites that
// list the client add up; at or over dnsbl_threshold the client gets
// "554 5.7.1 Service unavailable; client [addr] blocked using SITE" (the listing site of the
// highest weight). Answers are cached by their TTL, bounded by dnsbl_min_ttl_seconds and
// dnsbl_max_ttl_seconds; "not listed" for dnsbl_min_ttl_seconds; failures not at all.
//
// It is a connect check (smtpd_client_restrictions), so with delay_reject -- the default --
// the refusal comes at RCPT, as Postfix smtpd's reject_rbl_client and postscreen's "enforce"
// action give it: the log line names sender and recipient, a client_access OK before it
// still wins, and the lookups have had the whole greeting/EHLO/MAIL exchange to finish.
// mynetworks clients are never looked up.
//
// Never: blocks a session on DNS (lookups run on DnsLookup's thread); refuses on a DNS
// failure or timeout (that is "not listed"); looks anything up but the client's address.
#pragma once

#include <array>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "services/frontend/frontend_metrics.h"
#include "services/frontend/relay_policy.h"
#include "services/frontend/restrictions/check.h"
#include "services/frontend/restrictions/dns_lookup.h"

namespace sluice::control {
class LimitsStore;
}

namespace sluice::frontend::restrictions {

struct DnsblSite {
  std::string domain;
  int weight = 1;
  bool has_filter = false;
  std::array<std::vector<std::pair<int, int>>, 4> octets;  // allowed ranges per octet
  bool Matches(std::string_view answer_address) const;     // true without a filter
};

absl::StatusOr<DnsblSite> ParseDnsblSite(std::string_view spec);

// "2.0.0.127" for 127.0.0.2; the nibbles of an IPv6 address; "" for anything else.
std::string ReverseAddress(std::string_view address);

class Dnsbl : public Check {
 public:
  // `relay` (the context's) says who is in mynetworks: never looked up.
  Dnsbl(std::vector<DnsblSite> sites, int threshold, std::unique_ptr<DnsLookup> lookup,
        const control::LimitsStore* limits, const RelayPolicy& relay, FrontendMetrics* metrics)
      : sites_(std::move(sites)), threshold_(threshold), lookup_(std::move(lookup)), limits_(limits), relay_(relay),
        metrics_(metrics) {}
  std::string_view name() const override { return "dnsbl"; }
  void Prefetch(const smtp::SessionFacts& facts, asio::any_io_executor executor) override;
  asio::awaitable<Verdict> Evaluate(const Request& request) override;

 private:
  using Clock = std::chrono::steady_clock;
  struct Entry {
    bool done = false;
    absl::StatusOr<DnsAnswer> answer = DnsAnswer{};
    Clock::time_point expires;
    Clock::time_point started;
    std::vector<std::function<void()>> waiters;
  };
  // The cached or in-flight lookup of `name`, started when there is none.
  std::shared_ptr<Entry> Start(const std::string& name);
  void Finish(const std::shared_ptr<Entry>& e, absl::StatusOr<DnsAnswer> answer);
  void Count(std::string_view result) {
    if (metrics_ != nullptr) metrics_->DnsblAnswer(result);
  }
  // Waits until `e` is done or `deadline`; true when it is done.
  asio::awaitable<bool> Await(std::shared_ptr<Entry> e, Clock::time_point deadline, asio::any_io_executor ex);

  const std::vector<DnsblSite> sites_;
  const int threshold_;
  std::unique_ptr<DnsLookup> lookup_;
  const control::LimitsStore* limits_;
  const RelayPolicy& relay_;
  FrontendMetrics* metrics_;  // may be null (tests)
  std::mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<Entry>> cache_;
  uint64_t inserts_ = 0;
};

}  // namespace sluice::frontend::restrictions
