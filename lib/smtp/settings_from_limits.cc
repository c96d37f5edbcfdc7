// lib/smtp/settings_from_limits.cc -- see settings_from_limits.h.
#include "lib/smtp/settings_from_limits.h"

namespace sluice::smtp {

ServerSettings SettingsFromLimits(const sluice::v1::Limits& l, const sluice::v1::ServerConfig& server,
                                  const std::string& hostname) {
  ServerSettings s;
  s.hostname = hostname;
  s.banner = server.banner();
  s.line_length_limit = l.line_length_limit_bytes();
  s.command_timeout = std::chrono::seconds(l.smtpd_timeout_seconds());
  s.session_deadline = std::chrono::seconds(l.session_deadline_seconds());
  s.message_size_limit = l.message_size_limit_bytes();
  s.header_size_limit = l.header_size_limit_bytes();
  s.max_recipients = l.max_recipients();
  s.recipient_overshoot_limit = l.recipient_overshoot_limit();
  s.max_transactions = l.max_transactions_per_session();
  s.soft_error_limit = l.soft_error_limit();
  s.hard_error_limit = l.hard_error_limit();
  s.error_sleep = std::chrono::seconds(l.error_sleep_seconds());
  s.junk_command_limit = l.junk_command_limit();
  s.forbid_unauth_pipelining = server.forbid_unauth_pipelining();
  s.allow_nul_in_content = server.allow_nul_in_content();
  return s;
}

}  // namespace sluice::smtp
