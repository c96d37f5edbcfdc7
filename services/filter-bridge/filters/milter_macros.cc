// services/filter-bridge/filters/milter_macros.cc -- see milter_macros.h.
#include "services/filter-bridge/filters/milter_macros.h"

#include "services/filter-bridge/filters/milter_codec.h"

namespace sluice::filter_bridge {
namespace {

std::string DomainOf(std::string_view address) {
  size_t at = address.rfind('@');
  return at == std::string_view::npos ? std::string() : std::string(address.substr(at + 1));
}

std::string Value(std::string_view key, const MacroSource& s) {
  const sluice::v1::SessionMetadata& m = s.session;
  if (key == "j") return std::string(s.hostname);
  if (key == "daemon_name") return std::string(s.daemon_name.empty() ? s.hostname : s.daemon_name);
  if (key == "daemon_addr") return m.server_address();
  if (key == "daemon_port") return m.server_port() ? std::to_string(m.server_port()) : "";
  if (key == "v") return "sluice";
  if (key == "_") {
    if (m.client_address().empty()) return "";
    return (m.client_name().empty() ? "unknown" : m.client_name()) + " [" + m.client_address() + "]";
  }
  if (key == "client_addr") return m.client_address();
  if (key == "client_name" || key == "client_ptr") return m.client_name();
  if (key == "client_port") return m.client_port() ? std::to_string(m.client_port()) : "";
  if (key == "i") return m.session_id();
  if (key == "tls_version") return m.tls_version();
  if (key == "cipher") return m.tls_cipher();
  if (key == "auth_authen") return m.sasl_user();
  if (key == "mail_addr") return s.envelope.mail_from();
  if (key == "mail_host") return DomainOf(s.envelope.mail_from());
  if (key == "mail_mailer" || key == "rcpt_mailer") return "smtp";
  if (key == "rcpt_addr") return s.recipient ? s.recipient->address() : "";
  if (key == "rcpt_host") return s.recipient ? DomainOf(s.recipient->address()) : "";
  return "";
}

}  // namespace

std::vector<std::string> DefaultMacroNames(uint32_t stage) {
  switch (stage) {
    case milter::kStageConnect:
      return {"j", "{daemon_name}", "{daemon_addr}", "v", "_", "{client_addr}",
              "{client_name}", "{client_port}", "{client_ptr}"};
    case milter::kStageHelo:
      return {"{tls_version}", "{cipher}", "{cipher_bits}", "{cert_subject}", "{cert_issuer}"};
    case milter::kStageMail:
      return {"i", "{auth_type}", "{auth_authen}", "{auth_author}", "{mail_addr}",
              "{mail_host}", "{mail_mailer}"};
    case milter::kStageRcpt:
      return {"i", "{rcpt_addr}", "{rcpt_host}", "{rcpt_mailer}"};
    case milter::kStageData:
    case milter::kStageEoh:
    case milter::kStageEom:
      return {"i"};
    default:
      return {};
  }
}

std::vector<std::string> ParseMacroList(std::string_view list) {
  std::vector<std::string> names;
  size_t i = 0;
  while (i < list.size()) {
    while (i < list.size() && (list[i] == ' ' || list[i] == ',' || list[i] == '\t')) ++i;
    size_t j = i;
    while (j < list.size() && list[j] != ' ' && list[j] != ',' && list[j] != '\t') ++j;
    if (j > i) names.emplace_back(list.substr(i, j - i));
    i = j;
  }
  return names;
}

std::vector<std::pair<std::string, std::string>> MacroValues(const std::vector<std::string>& names,
                                                             const MacroSource& source) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const std::string& name : names) {
    std::string_view key = name;
    if (key.size() >= 2 && key.front() == '{' && key.back() == '}') key = key.substr(1, key.size() - 2);
    std::string value = Value(key, source);
    if (value.empty() || value.find('\0') != std::string::npos) continue;
    out.emplace_back(name, std::move(value));
  }
  return out;
}

}  // namespace sluice::filter_bridge
