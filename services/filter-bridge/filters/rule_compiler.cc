// services/filter-bridge/filters/rule_compiler.cc -- see rule_compiler.h.
#include "services/filter-bridge/filters/rule_compiler.h"

#include <string_view>
#include <utility>

#include "lib/control/yaml_config.h"
#include "services/filter-bridge/filters/filter_replies.h"
#include "services/filter-bridge/message/header_section.h"

namespace sluice::filter_bridge {
namespace {

// Compiles one optional pattern into *out; the error names the field.
absl::Status CompilePattern(std::string_view field, const std::string& pattern,
                            std::unique_ptr<RE2>* out) {
  if (pattern.empty()) return absl::OkStatus();
  RE2::Options options;
  options.set_log_errors(false);
  auto re = std::make_unique<RE2>(pattern, options);
  if (!re->ok()) {
    return absl::InvalidArgumentError(std::string(field) + ": bad RE2 pattern \"" + pattern +
                                      "\": " + re->error());
  }
  *out = std::move(re);
  return absl::OkStatus();
}

absl::Status ParseTristate(std::string_view field, const std::string& value,
                           CompiledRule::Tristate* out) {
  if (value.empty()) {
    *out = CompiledRule::Tristate::kAny;
  } else if (value == "yes") {
    *out = CompiledRule::Tristate::kYes;
  } else if (value == "no") {
    *out = CompiledRule::Tristate::kNo;
  } else {
    return absl::InvalidArgumentError(std::string(field) + ": \"" + value +
                                      "\" is not yes, no or empty");
  }
  return absl::OkStatus();
}

absl::Status CompileMatch(const sluice::v1::RuleMatch& m, CompiledRule& r) {
  if (!m.header().empty() && !IsValidFieldName(m.header())) {
    return absl::InvalidArgumentError("header: \"" + m.header() + "\" is not a header field name");
  }
  if (m.header().empty() && !m.header_pattern().empty()) {
    return absl::InvalidArgumentError("header_pattern needs header (the field name)");
  }
  r.header = m.header();
  struct {
    std::string_view field;
    const std::string& pattern;
    std::unique_ptr<RE2>* out;
  } patterns[] = {
      {"header_pattern", m.header_pattern(), &r.header_pattern},
      {"body_pattern", m.body_pattern(), &r.body_pattern},
      {"sender_pattern", m.sender_pattern(), &r.sender_pattern},
      {"recipient_pattern", m.recipient_pattern(), &r.recipient_pattern},
      {"client_name_pattern", m.client_name_pattern(), &r.client_name_pattern},
      {"helo_pattern", m.helo_pattern(), &r.helo_pattern},
      {"attachment_filename_pattern", m.attachment_filename_pattern(), &r.attachment_filename_pattern},
      {"attachment_content_type_pattern", m.attachment_content_type_pattern(),
       &r.attachment_content_type_pattern},
  };
  for (auto& p : patterns) {
    if (absl::Status s = CompilePattern(p.field, p.pattern, p.out); !s.ok()) return s;
  }
  if (m.client_cidr_size() > 0) {
    std::vector<std::string> cidrs(m.client_cidr().begin(), m.client_cidr().end());
    auto set = net::CidrSet::Parse(cidrs);
    if (!set.ok()) return absl::InvalidArgumentError("client_cidr: " + std::string(set.status().message()));
    r.client_cidrs = std::move(set).value();
  }
  r.size_over_bytes = m.size_over_bytes();
  if (absl::Status s = ParseTristate("tls", m.tls(), &r.tls); !s.ok()) return s;
  if (absl::Status s = ParseTristate("authenticated", m.authenticated(), &r.authenticated); !s.ok()) return s;
  r.invert = m.invert();
  return absl::OkStatus();
}

absl::Status CompileAction(const sluice::v1::Rule& rule, CompiledRule& r) {
  using sluice::v1::RuleAction;
  r.action = rule.action();
  switch (rule.action()) {
    case sluice::v1::RULE_ACTION_ACCEPT:
    case sluice::v1::RULE_ACTION_DISCARD:
      return absl::OkStatus();
    case sluice::v1::RULE_ACTION_REJECT:
    case sluice::v1::RULE_ACTION_TEMPFAIL: {
      const bool reject = rule.action() == sluice::v1::RULE_ACTION_REJECT;
      if (absl::Status s = filter_replies::ValidateVerdictReply(rule.code(), rule.enhanced_code(), reject);
          !s.ok()) {
        return s;
      }
      r.reply = filter_replies::VerdictReply(
          rule.code(), rule.enhanced_code(), rule.text(),
          reject ? smtp::replies::RuleReject() : smtp::replies::RuleTempfail());
      return absl::OkStatus();
    }
    case sluice::v1::RULE_ACTION_ADD_HEADER:
    case sluice::v1::RULE_ACTION_REPLACE_HEADER:
    case sluice::v1::RULE_ACTION_REMOVE_HEADER:
      if (!IsValidFieldName(rule.header_name())) {
        return absl::InvalidArgumentError("header_name: \"" + rule.header_name() +
                                          "\" is not a header field name");
      }
      r.header_name = rule.header_name();
      r.header_value = rule.header_value();
      return absl::OkStatus();
    case sluice::v1::RULE_ACTION_HOLD:
      r.hold_reason = rule.text().empty() ? "rule " + r.name : rule.text();
      return absl::OkStatus();
    default:
      return absl::InvalidArgumentError("action: missing or unknown (accept, reject, tempfail, "
                                        "discard, add_header, replace_header, remove_header, hold)");
  }
}

}  // namespace

absl::StatusOr<std::vector<sluice::v1::Rule>> LoadRules(const sluice::v1::RulesFilterConfig& config) {
  std::vector<sluice::v1::Rule> rules;
  if (!config.file().empty()) {
    sluice::v1::RulesFilterConfig from_file;
    if (absl::Status s = control::LoadYamlFile(config.file(), &from_file); !s.ok()) {
      return absl::InvalidArgumentError("rules file: " + std::string(s.message()));
    }
    if (!from_file.file().empty()) {
      return absl::InvalidArgumentError("rules file " + config.file() +
                                        ": may hold only `rules:` (no nested file)");
    }
    rules.assign(from_file.rules().begin(), from_file.rules().end());
  }
  rules.insert(rules.end(), config.rules().begin(), config.rules().end());
  return rules;
}

absl::StatusOr<std::vector<CompiledRule>> CompileRules(const std::vector<sluice::v1::Rule>& rules) {
  std::vector<CompiledRule> out;
  out.reserve(rules.size());
  for (size_t i = 0; i < rules.size(); ++i) {
    const sluice::v1::Rule& rule = rules[i];
    CompiledRule r;
    r.name = rule.name().empty() ? "rule-" + std::to_string(i + 1) : rule.name();
    const std::string where = "rule '" + r.name + "' (#" + std::to_string(i + 1) + "): ";
    if (absl::Status s = CompileMatch(rule.match(), r); !s.ok()) {
      return absl::InvalidArgumentError(where + std::string(s.message()));
    }
    if (absl::Status s = CompileAction(rule, r); !s.ok()) {
      return absl::InvalidArgumentError(where + std::string(s.message()));
    }
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace sluice::filter_bridge
