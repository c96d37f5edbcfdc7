// lib/control/effective_limits.h
//
// The data-path limits a stage enforces on its SMTP port: its own Limits, lowered to what
// the stages behind it take. A message the frontend accepts goes through the filter-bridge
// and reinject, each with its own message_size_limit_bytes, header_size_limit_bytes and
// max_recipients; a frontend raised to 20 MB in front of a filter-bridge left at 10 MB would
// advertise SIZE 20 MB and accept mail the next stage then refuses. So each stage asks its
// downstream's Admin.GetEffectiveLimits (the replicas it watches for capacity,
// status_watcher.h), and takes for each data-path limit the smallest of its own setting
// and every downstream replica's effective value (0 = no limit counts as the largest).
// The downstream's own answer already includes the stages behind it, so the frontend learns
// reinject's limits through the filter-bridge.
//
// A downstream value below our own setting is a mismatch: logged once (event
// limit_lowered, with both values and the source) and shown as
// sluice_effective_limit_lowered{limit} = 1 and by `sluicectl limits get`.
//
// Never: raises a limit above the stage's own setting; counts a downstream replica it has
// not heard from; logs the same mismatch twice in a row.
#pragma once

#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "lib/control/limits_store.h"
#include "lib/observe/metrics.h"
#include "sluice/v1/effective_limits.pb.h"
#include "sluice/v1/limits.pb.h"

namespace sluice::control {

// The Limits fields a later stage enforces too: "message_size_limit_bytes",
// "header_size_limit_bytes", "max_recipients".
const std::vector<std::string>& DataPathLimitNames();

// What one downstream replica said, and where it was asked.
struct DownstreamLimits {
  std::string address;
  sluice::v1::EffectiveLimits limits;
};

class EffectiveLimits {
 public:
  // `stage` and `instance` name this stage in reports ("frontend", "mx-1"); `registry`
  // may be null.
  EffectiveLimits(std::string stage, std::string instance, LimitsStore& own, prometheus::Registry* registry);

  // The downstream admin addresses asked (for the report); empty: no downstream watched.
  void SetDownstreamTargets(std::string description);
  // Every downstream replica heard from (replaces the previous set). True when the
  // effective values changed.
  bool SetDownstream(std::vector<DownstreamLimits> replicas);

  // Own Limits with the data-path fields lowered: what the SMTP server enforces and
  // advertises. Cheap (a lock and a pointer compare) unless own limits changed.
  std::shared_ptr<const sluice::v1::Limits> Get();
  // Admin.GetEffectiveLimits.
  sluice::v1::EffectiveLimits Report();

 private:
  void RecomputeLocked();  // mu_ held

  const std::string stage_;
  const std::string instance_;
  const std::string source_;  // "stage/instance"
  LimitsStore& own_;
  std::unique_ptr<observe::Labelled<prometheus::Gauge>> lowered_;

  std::mutex mu_;
  std::string downstream_description_;
  std::vector<DownstreamLimits> downstream_;
  std::shared_ptr<const sluice::v1::Limits> own_seen_;   // the own snapshot last computed from
  std::shared_ptr<const sluice::v1::Limits> effective_;  // own, lowered
  sluice::v1::EffectiveLimits report_;
  std::set<std::string> logged_;  // mismatches logged ("limit own downstream source")
};

}  // namespace sluice::control
