// services/filter-bridge/filters/rule_compiler.h
//
// Built-in rules (config.proto Rule/RuleMatch) checked and compiled once, at config time:
// every pattern compiled with RE2 (linear-time matching: no pattern and no input can make a
// rule run away), CIDR lists parsed, reply codes and header names validated, defaults filled
// in (reject "550 5.7.1 Message content rejected", tempfail "451 4.7.1 Message content
// deferred"). Each error names the rule ("rule 'block-exe' (#2): body_pattern: missing ]").
// Rules come from RulesFilterConfig.file (a YAML file holding `rules:`) and then its inline
// rules.
//
// Never: accepts a rule it cannot evaluate exactly as written (a bad pattern is an error,
// not a rule that never matches).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "lib/net/cidr.h"
#include "lib/smtp/reply.h"
#include "re2/re2.h"
#include "sluice/v1/config.pb.h"

namespace sluice::filter_bridge {

struct CompiledRule {
  enum class Tristate { kAny, kYes, kNo };

  std::string name;  // configured, or "rule-N" (1-based)
  sluice::v1::RuleAction action = sluice::v1::RULE_ACTION_UNSPECIFIED;

  // Conditions (all that are set must hold; then `invert` negates).
  std::string header;  // field name; empty: no header condition
  std::unique_ptr<RE2> header_pattern;  // null: the header's presence is enough
  std::unique_ptr<RE2> body_pattern;
  std::unique_ptr<RE2> sender_pattern;
  std::unique_ptr<RE2> recipient_pattern;
  net::CidrSet client_cidrs;
  std::unique_ptr<RE2> client_name_pattern;
  std::unique_ptr<RE2> helo_pattern;
  uint64_t size_over_bytes = 0;  // 0: no size condition
  std::unique_ptr<RE2> attachment_filename_pattern;
  std::unique_ptr<RE2> attachment_content_type_pattern;
  Tristate tls = Tristate::kAny;
  Tristate authenticated = Tristate::kAny;
  bool invert = false;

  // Action parameters.
  smtp::Reply reply;         // reject / tempfail
  std::string header_name;   // add / replace / remove header
  std::string header_value;  // add / replace header
  std::string hold_reason;   // hold: the rule's text, or "rule NAME"

  bool NeedsMime() const { return body_pattern || attachment_filename_pattern || attachment_content_type_pattern; }
  bool NeedsFullSession() const { return tls != Tristate::kAny || authenticated != Tristate::kAny; }
};

// Reads config.file (when set) with lib/control's strict YAML loader into a RulesFilterConfig
// and returns its rules followed by config's inline rules.
absl::StatusOr<std::vector<sluice::v1::Rule>> LoadRules(const sluice::v1::RulesFilterConfig& config);

// Compiles the rules, in order.
absl::StatusOr<std::vector<CompiledRule>> CompileRules(const std::vector<sluice::v1::Rule>& rules);

}  // namespace sluice::filter_bridge
