// lib/control/effective_limits.cc -- see effective_limits.h.
#include "lib/control/effective_limits.h"

#include <cstdint>
#include <limits>

#include "absl/strings/str_cat.h"
#include "lib/observe/log.h"

namespace sluice::control {
namespace {

using google::protobuf::FieldDescriptor;

// 0 means "no limit" for the sizes: the largest of all.
uint64_t Rank(uint64_t v) { return v == 0 ? std::numeric_limits<uint64_t>::max() : v; }

const FieldDescriptor* Field(const std::string& name) {
  return sluice::v1::Limits::descriptor()->FindFieldByName(name);
}

uint64_t GetValue(const sluice::v1::Limits& l, const std::string& name) {
  const FieldDescriptor* f = Field(name);
  if (f == nullptr) return 0;
  const auto* r = l.GetReflection();
  return f->cpp_type() == FieldDescriptor::CPPTYPE_UINT64 ? r->GetUInt64(l, f) : r->GetUInt32(l, f);
}

void SetValue(sluice::v1::Limits* l, const std::string& name, uint64_t v) {
  const FieldDescriptor* f = Field(name);
  if (f == nullptr) return;
  const auto* r = l->GetReflection();
  if (f->cpp_type() == FieldDescriptor::CPPTYPE_UINT64) {
    r->SetUInt64(l, f, v);
  } else {
    r->SetUInt32(l, f, static_cast<uint32_t>(std::min<uint64_t>(v, std::numeric_limits<uint32_t>::max())));
  }
}

bool SameValues(const sluice::v1::EffectiveLimits& a, const sluice::v1::EffectiveLimits& b) {
  if (a.limits_size() != b.limits_size()) return false;
  for (int i = 0; i < a.limits_size(); ++i) {
    if (a.limits(i).value() != b.limits(i).value() || a.limits(i).source() != b.limits(i).source()) return false;
  }
  return a.downstream_replicas() == b.downstream_replicas();
}

}  // namespace

const std::vector<std::string>& DataPathLimitNames() {
  static const std::vector<std::string> names = {"message_size_limit_bytes", "header_size_limit_bytes",
                                                 "max_recipients"};
  return names;
}

EffectiveLimits::EffectiveLimits(std::string stage, std::string instance, LimitsStore& own,
                                 prometheus::Registry* registry)
    : stage_(std::move(stage)), instance_(std::move(instance)), source_(absl::StrCat(stage_, "/", instance_)),
      own_(own) {
  if (registry != nullptr) {
    lowered_ = std::make_unique<observe::Labelled<prometheus::Gauge>>(
        *registry, "sluice_effective_limit_lowered",
        "1 while a stage behind this one takes less than this stage's own setting of the limit.",
        std::vector<observe::LabelSet>{{"limit", DataPathLimitNames()}});
  }
}

void EffectiveLimits::SetDownstreamTargets(std::string description) {
  std::lock_guard<std::mutex> lock(mu_);
  downstream_description_ = std::move(description);
  RecomputeLocked();
}

bool EffectiveLimits::SetDownstream(std::vector<DownstreamLimits> replicas) {
  std::lock_guard<std::mutex> lock(mu_);
  if (own_seen_ == nullptr) RecomputeLocked();
  sluice::v1::EffectiveLimits before = report_;
  downstream_ = std::move(replicas);
  RecomputeLocked();
  return !SameValues(before, report_);
}

std::shared_ptr<const sluice::v1::Limits> EffectiveLimits::Get() {
  std::lock_guard<std::mutex> lock(mu_);
  if (own_seen_ == nullptr || own_.Get() != own_seen_) RecomputeLocked();
  return effective_;
}

sluice::v1::EffectiveLimits EffectiveLimits::Report() {
  std::lock_guard<std::mutex> lock(mu_);
  if (own_seen_ == nullptr || own_.Get() != own_seen_) RecomputeLocked();
  return report_;
}

void EffectiveLimits::RecomputeLocked() {
  own_seen_ = own_.Get();
  auto effective = std::make_shared<sluice::v1::Limits>(*own_seen_);
  sluice::v1::EffectiveLimits report;
  report.set_stage(stage_);
  report.set_instance(instance_);
  report.set_downstream(downstream_description_);
  report.set_downstream_replicas(static_cast<uint32_t>(downstream_.size()));
  std::set<std::string> mismatches;
  for (const std::string& name : DataPathLimitNames()) {
    const uint64_t own = GetValue(*own_seen_, name);
    bool heard = false;
    uint64_t lowest = 0;
    std::string lowest_source;
    for (const DownstreamLimits& replica : downstream_) {
      for (const sluice::v1::EffectiveLimit& l : replica.limits.limits()) {
        if (l.name() != name) continue;
        if (!heard || Rank(l.value()) < Rank(lowest)) {
          heard = true;
          lowest = l.value();
          lowest_source = l.source().empty() ? replica.address : l.source();
        }
      }
    }
    sluice::v1::EffectiveLimit* e = report.add_limits();
    e->set_name(name);
    e->set_configured(own);
    const bool lowered = heard && Rank(lowest) < Rank(own);
    if (lowered) {
      SetValue(effective.get(), name, lowest);
      e->set_value(lowest);
      e->set_source(lowest_source);
      std::string key = absl::StrCat(name, " ", own, " ", lowest, " ", lowest_source);
      if (logged_.count(key) == 0) {
        // Good mail a later stage would refuse permanently: say so once, loudly.
        observe::Warn("limit_lowered")
            .Kv("limit", name)
            .Kv("configured", own)
            .Kv("effective", lowest)
            .Kv("source", lowest_source)
            .Kv("downstream", downstream_description_);
      }
      mismatches.insert(std::move(key));
    } else {
      e->set_value(own);
      e->set_source(source_);
    }
    if (lowered_ != nullptr) lowered_->at({name}).Set(lowered ? 1 : 0);
  }
  logged_ = std::move(mismatches);  // a mismatch that goes and comes back is logged again
  effective_ = std::move(effective);
  report_ = std::move(report);
}

}  // namespace sluice::control
