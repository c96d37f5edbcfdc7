// services/filter-bridge/filters/rule_matcher.cc -- see rule_matcher.h.
#include "services/filter-bridge/filters/rule_matcher.h"

#include <string_view>

namespace sluice::filter_bridge {
namespace {

bool Partial(const RE2& re, std::string_view text) { return RE2::PartialMatch(text, re); }

bool TristateHolds(CompiledRule::Tristate t, bool fact) {
  return t == CompiledRule::Tristate::kAny || (t == CompiledRule::Tristate::kYes) == fact;
}

// All conditions except invert; false as soon as one fails.
absl::StatusOr<bool> AllConditions(const CompiledRule& rule, RuleFacts& facts) {
  const FilterContext& ctx = facts.ctx();
  const sluice::v1::SessionMetadata& session = ctx.session;
  if (!rule.header.empty()) {
    bool found = false;
    for (const HeaderField& f : facts.headers()) {
      if (!f.Is(rule.header)) continue;
      if (rule.header_pattern == nullptr || Partial(*rule.header_pattern, f.UnfoldedValue())) {
        found = true;
        break;
      }
    }
    if (!found) return false;
  }
  if (rule.sender_pattern && !Partial(*rule.sender_pattern, ctx.envelope.mail_from())) return false;
  if (rule.recipient_pattern) {
    bool any = false;
    for (const auto& r : ctx.envelope.recipients()) {
      if (Partial(*rule.recipient_pattern, r.address())) {
        any = true;
        break;
      }
    }
    if (!any) return false;
  }
  if (!rule.client_cidrs.empty() && !rule.client_cidrs.Contains(session.client_address())) return false;
  if (rule.client_name_pattern && !Partial(*rule.client_name_pattern, session.client_name())) return false;
  if (rule.helo_pattern && !Partial(*rule.helo_pattern, session.helo())) return false;
  if (rule.size_over_bytes > 0 && ctx.MessageSize() <= rule.size_over_bytes) return false;
  if (!TristateHolds(rule.tls, !session.tls_version().empty())) return false;
  if (!TristateHolds(rule.authenticated, !session.sasl_user().empty())) return false;
  if (rule.NeedsMime()) {
    auto scan = facts.mime();
    if (!scan.ok()) return scan.status();
    const MimeScan& mime = **scan;
    if (rule.attachment_filename_pattern) {
      bool any = false;
      for (const MimePart& p : mime.parts) {
        if (!p.filename.empty() && Partial(*rule.attachment_filename_pattern, p.filename)) {
          any = true;
          break;
        }
      }
      if (!any) return false;
    }
    if (rule.attachment_content_type_pattern) {
      bool any = false;
      for (const MimePart& p : mime.parts) {
        if (Partial(*rule.attachment_content_type_pattern, p.content_type)) {
          any = true;
          break;
        }
      }
      if (!any) return false;
    }
    if (rule.body_pattern) {
      bool any = false;
      for (const std::string& line : mime.text_lines) {
        if (Partial(*rule.body_pattern, line)) {
          any = true;
          break;
        }
      }
      if (!any) return false;
    }
  }
  return true;
}

}  // namespace

const std::vector<HeaderField>& RuleFacts::headers() {
  if (!headers_) headers_ = ctx_.Headers();
  return *headers_;
}

absl::StatusOr<const MimeScan*> RuleFacts::mime() {
  if (!mime_) {
    auto scan = ScanMimeMessage(ctx_.spool, ctx_.edits, limits_);
    if (!scan.ok()) return scan.status();
    mime_ = std::move(scan).value();
  }
  return &*mime_;
}

absl::StatusOr<RuleMatch> MatchRule(const CompiledRule& rule, RuleFacts& facts) {
  if (rule.NeedsFullSession() && !facts.ctx().session.complete()) return RuleMatch::kUnknown;
  auto all = AllConditions(rule, facts);
  if (!all.ok()) return all.status();
  return (*all != rule.invert) ? RuleMatch::kMatch : RuleMatch::kNoMatch;
}

}  // namespace sluice::filter_bridge
