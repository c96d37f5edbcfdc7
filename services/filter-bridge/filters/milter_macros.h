// services/filter-bridge/filters/milter_macros.h
//
// The macros (Sendmail "symbols") a milter gets before each event, with Postfix's default
// sets (milter_connect_macros, milter_helo_macros, ...) plus the client facts milters most
// often ask for ({daemon_name} is milter_macro_daemon_name, default the hostname):
//   connect  j {daemon_name} {daemon_addr} v _ {client_addr} {client_name} {client_port} {client_ptr}
//   helo     {tls_version} {cipher} {cipher_bits} {cert_subject} {cert_issuer}
//   mail     i {auth_type} {auth_authen} {auth_author} {mail_addr} {mail_host} {mail_mailer}
//   rcpt     i {rcpt_addr} {rcpt_host} {rcpt_mailer}
//   data/eoh/eom  i
// A milter may replace a stage's list in option negotiation (SMFIF_SETSYMLIST). Values come
// from the session record and the envelope; `i` is the session id (no queue id exists before
// the queue). A macro whose value is unknown or empty is not sent, as Postfix does.
//
// Never: sends a secret (there is none in the session record) or a value with a NUL.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sluice/v1/session.pb.h"

namespace sluice::filter_bridge {

struct MacroSource {
  const sluice::v1::SessionMetadata& session;
  const sluice::v1::Transaction& envelope;
  std::string_view hostname;
  const sluice::v1::Recipient* recipient = nullptr;  // the RCPT being reported, if any
  // {daemon_name} (Postfix milter_macro_daemon_name); empty: the hostname. rspamd takes it
  // as the authserv-id of the Authentication-Results it adds (docs/filters.md).
  std::string_view daemon_name = {};
};

// Postfix's default names for a stage (milter::kStage*).
std::vector<std::string> DefaultMacroNames(uint32_t stage);
// "{a} b {c}" (a SETSYMLIST list) as names.
std::vector<std::string> ParseMacroList(std::string_view list);
// (name as listed, value) for every listed macro with a known, non-empty value.
std::vector<std::pair<std::string, std::string>> MacroValues(const std::vector<std::string>& names,
                                                             const MacroSource& source);

}  // namespace sluice::filter_bridge
