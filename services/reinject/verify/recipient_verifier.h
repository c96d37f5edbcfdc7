// services/reinject/verify/recipient_verifier.h
//
// Postfix verify(8) for one reinject replica: "is this address deliverable?", answered
// from the cache (address_verify_cache.h) or by a probe of the delivery route
// (DeliveryAgent::Probe: the next hop mail to the address would take). Definite answers
// go into the cache; a stale one is still answered while a probe refreshes it.
//
//   - One probe per address at a time: a query for an address being probed waits on it.
//   - At most verify_probe_concurrency probes run; a query that would start one more gets
//     UNKNOWN at once (counted as a limit hit), so a dictionary attack costs the final
//     destination a bounded number of connections.
//   - A probe runs at most verify_probe_timeout_seconds (then it failed, never "no").
//   - A query waits at most its own `wait`; then it gets UNKNOWN, while the probe goes on
//     and caches its answer for the next query (the frontend's 450 4.1.1, then a retry).
//
// Never: answers UNDELIVERABLE without a 5xx reply to RCPT from the destination; calls a
// `done` twice or never; blocks its caller (gRPC threads) on a probe.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "absl/time/time.h"
#include "asio/any_io_executor.hpp"
#include "services/reinject/delivery/delivery_agent.h"
#include "services/reinject/queue/queue_limits.h"
#include "services/reinject/verify/address_verify_cache.h"
#include "services/reinject/verify/verify_metrics.h"
#include "sluice/v1/verify.pb.h"

namespace sluice::reinject {

struct RecipientVerifierOptions {
  DeliveryAgent* agent = nullptr;  // the delivery route; must outlive the verifier
  LimitsSource limits;             // address_verify_*, verify_probe_* (a snapshot per query)
  bool negative_cache = true;      // ReinjectConfig.address_verify_negative_cache
  std::string sender;              // MAIL FROM of probes; "" is the null sender
  std::function<asio::any_io_executor()> executor;  // where a probe runs (the io pool)
  VerifyMetrics* metrics = nullptr;                 // optional
  std::function<absl::Time()> now = [] { return absl::Now(); };
};

class RecipientVerifier {
 public:
  using Done = std::function<void(sluice::v1::VerifyRecipientResponse)>;

  explicit RecipientVerifier(RecipientVerifierOptions options);
  ~RecipientVerifier();  // StopAndWait(verify_probe_timeout)
  RecipientVerifier(const RecipientVerifier&) = delete;
  RecipientVerifier& operator=(const RecipientVerifier&) = delete;

  // Answers through `done`: at once (cache, no room for a probe, wait 0), when the probe
  // finishes, or when `wait` passes -- on the caller's thread or a probe's io thread.
  void Verify(const std::string& address, absl::Duration wait, Done done);

  // Ends every running probe (their waiters get UNKNOWN) and waits up to `deadline` for
  // them; later queries get UNKNOWN. Call while the io threads still run.
  void StopAndWait(absl::Duration deadline);

  size_t cached() const { return cache_.size(); }
  uint64_t probes_started() const;
  size_t running() const;  // probes out now

 private:
  struct Waiter;
  struct Probe;

  // Starts a probe of `address` (mu_ held); null when none may start now.
  std::shared_ptr<Probe> StartProbe(const std::string& key, const std::string& address,
                                    const sluice::v1::Limits& limits);
  void Finished(const std::shared_ptr<Probe>& probe, const ProbeResult& result, bool timed_out, double seconds);
  void Answer(const std::shared_ptr<Waiter>& waiter, const sluice::v1::VerifyRecipientResponse& response);
  void Count(const sluice::v1::VerifyRecipientResponse& response);
  VerifyCachePolicy Policy(const sluice::v1::Limits& limits) const;

  const RecipientVerifierOptions options_;
  AddressVerifyCache cache_;

  mutable std::mutex mu_;
  std::condition_variable idle_;
  bool stopping_ = false;
  std::map<std::string, std::shared_ptr<Probe>> running_;  // by key
  size_t timers_ = 0;  // waits armed or about to be (each ends by itself, or when answered)
  uint64_t started_ = 0;
};

}  // namespace sluice::reinject
