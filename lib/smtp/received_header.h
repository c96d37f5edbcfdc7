// lib/smtp/received_header.h
//
// The trace header each receiving stage prepends (RFC 5321 §4.4), in Postfix smtpd's layout
// (tests/integration/test_postfix_counterparts.py holds it to a real Postfix's):
//   Received: from HELO (NAME [ADDR])
//   	(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384)
//   	by HOSTNAME (sluice) with ESMTPS id ID
//   	for <rcpt>; Wed, 25 Nov 2026 13:27:09 +0000 (UTC)
// ("by ... id ID;" and the date on a line of its own when there is not exactly one
// recipient), and the RFC 5322 date it uses (also for Date: headers the queue adds).
//
// Never: emits a line longer than 998 octets or a value with CR/LF (hostile HELO strings
// are cleaned).
#pragma once

#include <ctime>
#include <string>
#include <string_view>

namespace sluice::smtp {

struct ReceivedInfo {
  std::string helo;          // what the client said
  std::string client_name;   // verified reverse name, "unknown" when none
  std::string client_address;
  std::string by_hostname;   // this stage's name
  std::string protocol;      // SMTP, ESMTP, ESMTPS, LMTP …
  std::string id;            // session or queue id
  std::string tls_version;   // empty without TLS
  std::string tls_cipher;
  std::string for_recipient; // only when there is exactly one recipient
};

// The whole header field with its CRLF.
std::string FormatReceived(const ReceivedInfo& info, std::time_t now);

// "Wed, 25 Nov 2026 13:27:09 +0000" (RFC 5322 §3.3), in UTC.
std::string Rfc5322Date(std::time_t now);

}  // namespace sluice::smtp
