// services/filter-bridge/filters/rule_matcher.h
//
// Evaluates a compiled rule's conditions against one message. The facts a rule may need are
// computed once per message and only when a rule needs them (the header list as edited so
// far; the MIME scan for body and attachment conditions).
//
// Condition semantics: header name is compared ignoring case, its pattern runs on the
// unfolded value (leading/trailing white space trimmed); body patterns run on each decoded
// line of the text parts; sender on MAIL FROM ("" for <>); recipient on each RCPT (any
// match); client_cidr on the original client address; tls/authenticated on the full session
// record. Patterns match anywhere in the text (RE2 partial match) unless anchored.
//
// Never: guesses a fact it does not have: a tls/authenticated condition with only XFORWARD
// facts leaves the rule unmatched (invert included) and says so.
#pragma once

#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "services/filter-bridge/filters/filter.h"
#include "services/filter-bridge/filters/mime_scan.h"
#include "services/filter-bridge/filters/rule_compiler.h"

namespace sluice::filter_bridge {

class RuleFacts {
 public:
  RuleFacts(const FilterContext& ctx, const MimeLimits& limits) : ctx_(ctx), limits_(limits) {}

  const FilterContext& ctx() const { return ctx_; }
  const std::vector<HeaderField>& headers();
  absl::StatusOr<const MimeScan*> mime();

 private:
  const FilterContext& ctx_;
  const MimeLimits& limits_;
  std::optional<std::vector<HeaderField>> headers_;
  std::optional<MimeScan> mime_;
};

enum class RuleMatch { kMatch, kNoMatch, kUnknown };  // kUnknown: facts missing

absl::StatusOr<RuleMatch> MatchRule(const CompiledRule& rule, RuleFacts& facts);

}  // namespace sluice::filter_bridge
