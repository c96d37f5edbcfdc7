// lib/smtp/capabilities.h
//
// What an SMTP server announced in its EHLO reply (RFC 5321 §4.1.1.1 and the extensions'
// RFCs), as the relaying stages need it: PIPELINING, SIZE n, 8BITMIME, ENHANCEDSTATUSCODES,
// SMTPUTF8, DSN, STARTTLS, CHUNKING, XFORWARD with its attribute list, AUTH mechanisms.
//
// Never: trusts a capability line beyond the bounds of the reply parser that produced it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lib/smtp/reply.h"

namespace sluice::smtp {

struct Capabilities {
  bool pipelining = false;
  bool size = false;
  uint64_t size_limit = 0;  // 0: SIZE without a number, or no SIZE
  bool eightbitmime = false;
  bool enhanced_status_codes = false;
  bool smtputf8 = false;
  bool dsn = false;
  bool starttls = false;
  bool chunking = false;
  bool xforward = false;
  std::vector<std::string> xforward_attrs;  // upper-cased attribute names
  std::vector<std::string> auth;            // upper-cased SASL mechanisms
};

// From the reply to EHLO (the first line is the greeting name, the others keywords).
Capabilities ParseCapabilities(const Reply& ehlo_reply);

}  // namespace sluice::smtp
