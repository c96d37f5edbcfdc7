// services/filter-bridge/filters/rules_filter.h
//
// The built-in rules filter (FilterConfig kind "rules"), Postfix header_checks/body_checks
// made safe for hostile input: RE2 patterns, a real MIME parser with bounds. Rules run in
// order against the message as the filter receives it; header actions and hold collect and
// the rules go on; accept ends the rules (the next filter runs); reject, tempfail and
// discard end the chain.
//
// Never: blocks on I/O (the rules file is read at config time); runs past the deadline
// between rules.
#pragma once

#include <memory>

#include "services/filter-bridge/filters/filter.h"
#include "services/filter-bridge/filters/mime_scan.h"
#include "services/filter-bridge/filters/rule_compiler.h"

namespace sluice::filter_bridge {

class RulesFilter : public Filter {
 public:
  explicit RulesFilter(std::vector<CompiledRule> rules, MimeLimits limits = MimeLimits{})
      : rules_(std::move(rules)), limits_(limits) {}
  asio::awaitable<FilterOutcome> Run(const FilterContext& ctx) override;
  // The same evaluation, synchronously (Run wraps it).
  FilterOutcome Evaluate(const FilterContext& ctx) const;

 private:
  std::vector<CompiledRule> rules_;
  MimeLimits limits_;
};

// Factory for FilterConfig.rules.
std::unique_ptr<FilterFactory> NewRulesFilterFactory();

}  // namespace sluice::filter_bridge
