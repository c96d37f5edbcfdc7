// services/filter-bridge/filters/rules_filter.cc -- see rules_filter.h.
#include "services/filter-bridge/filters/rules_filter.h"

#include <string>

#include "services/filter-bridge/filters/rule_matcher.h"

namespace sluice::filter_bridge {
namespace {

void AppendDetail(std::string& detail, std::string_view text) {
  if (!detail.empty()) detail += "; ";
  detail += text;
}

class RulesFilterFactory : public FilterFactory {
 public:
  std::string_view kind() const override { return "rules"; }
  absl::StatusOr<std::unique_ptr<Filter>> Create(const sluice::v1::FilterConfig& config,
                                                 const FilterFactoryContext&) override {
    auto rules = LoadRules(config.rules());
    if (!rules.ok()) return rules.status();
    auto compiled = CompileRules(*rules);
    if (!compiled.ok()) return compiled.status();
    return std::unique_ptr<Filter>(new RulesFilter(std::move(compiled).value()));
  }
};

}  // namespace

asio::awaitable<FilterOutcome> RulesFilter::Run(const FilterContext& ctx) {
  co_return Evaluate(ctx);
}

FilterOutcome RulesFilter::Evaluate(const FilterContext& ctx) const {
  FilterDecision d;
  RuleFacts facts(ctx, limits_);
  bool skipped_incomplete = false;
  for (const CompiledRule& rule : rules_) {
    if (Clock::now() >= ctx.deadline) return absl::DeadlineExceededError("rules: deadline passed");
    auto match = MatchRule(rule, facts);
    if (!match.ok()) return match.status();
    if (*match == RuleMatch::kUnknown) {
      skipped_incomplete = true;
      continue;
    }
    if (*match == RuleMatch::kNoMatch) continue;
    switch (rule.action) {
      case sluice::v1::RULE_ACTION_ACCEPT:
        d.verdict = Verdict::kAccept;
        AppendDetail(d.detail, "rule " + rule.name);
        break;
      case sluice::v1::RULE_ACTION_REJECT:
        d.verdict = Verdict::kReject;
        d.reply = rule.reply;
        AppendDetail(d.detail, "rule " + rule.name);
        break;
      case sluice::v1::RULE_ACTION_TEMPFAIL:
        d.verdict = Verdict::kTempfail;
        d.reply = rule.reply;
        AppendDetail(d.detail, "rule " + rule.name);
        break;
      case sluice::v1::RULE_ACTION_DISCARD:
        d.verdict = Verdict::kDiscard;
        AppendDetail(d.detail, "rule " + rule.name);
        break;
      case sluice::v1::RULE_ACTION_ADD_HEADER:
        d.header_edits.push_back(HeaderEdit::Add(rule.header_name, rule.header_value));
        AppendDetail(d.detail, "rule " + rule.name + " add_header");
        continue;
      case sluice::v1::RULE_ACTION_REPLACE_HEADER:
        d.header_edits.push_back(HeaderEdit::ReplaceAll(rule.header_name, rule.header_value));
        AppendDetail(d.detail, "rule " + rule.name + " replace_header");
        continue;
      case sluice::v1::RULE_ACTION_REMOVE_HEADER:
        d.header_edits.push_back(HeaderEdit::RemoveAll(rule.header_name));
        AppendDetail(d.detail, "rule " + rule.name + " remove_header");
        continue;
      case sluice::v1::RULE_ACTION_HOLD:
        if (!d.hold) {
          d.hold_reason = rule.hold_reason;
          d.rule = rule.name;
        }
        d.hold = true;
        AppendDetail(d.detail, "rule " + rule.name + " hold");
        continue;
      default:
        continue;
    }
    d.rule = rule.name;  // the final verdict's rule names the decision (over a hold's)
    break;  // accept, reject, tempfail, discard end the rules
  }
  if (skipped_incomplete) {
    AppendDetail(d.detail, "session facts incomplete (XFORWARD only): tls/authenticated rules skipped");
  }
  return d;
}

std::unique_ptr<FilterFactory> NewRulesFilterFactory() {
  return std::make_unique<RulesFilterFactory>();
}

}  // namespace sluice::filter_bridge
