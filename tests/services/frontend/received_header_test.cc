// tests/services/frontend/received_header_test.cc
//
// The Received: header the frontend prepends (Postfix's before-filter layout): who the
// client said it was and who it is, our name, protocol and session id, TLS facts when TLS
// is up, "for <rcpt>" only for exactly one recipient, and hostile HELO strings unable to
// add lines.
//
// Never: depends on the clock (a fixed time is formatted).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "lib/smtp/received_header.h"
#include "services/frontend/proxy_session.h"

namespace sluice::frontend {
namespace {

constexpr std::time_t kNow = 1795613229;  // Wed, 25 Nov 2026 13:27:09 +0000

smtp::SessionFacts Facts() {
  smtp::SessionFacts f;
  f.session_id = "4Xk9aB2cD3";
  f.client_address = "198.51.100.7";
  f.client_name = "mail.example.org";
  f.helo = "mail.example.org";
  f.esmtp = true;
  return f;
}

TEST(FrontendReceived, PostfixLayoutWithOneRecipient) {
  std::string h = smtp::FormatReceived(ReceivedInfoFor(Facts(), "mx.example.net", {"bob@example.net"}), kNow);
  EXPECT_EQ(h,
            "Received: from mail.example.org (mail.example.org [198.51.100.7])\r\n"
            "\tby mx.example.net (sluice) with ESMTP id 4Xk9aB2cD3\r\n"
            "\tfor <bob@example.net>; Wed, 25 Nov 2026 13:27:09 +0000 (UTC)\r\n");
}

TEST(FrontendReceived, NoForClauseWithSeveralRecipientsAndTheDateOnItsOwnLine) {
  std::string h = smtp::FormatReceived(
      ReceivedInfoFor(Facts(), "mx.example.net", {"bob@example.net", "carol@example.net"}), kNow);
  EXPECT_EQ(h.find("for <"), std::string::npos);
  EXPECT_NE(h.find("id 4Xk9aB2cD3;\r\n\tWed, 25 Nov 2026 13:27:09 +0000 (UTC)\r\n"), std::string::npos) << h;
}

TEST(FrontendReceived, DayOfTheMonthIsBlankPaddedAsPostfixWritesIt) {
  std::string h = smtp::FormatReceived(ReceivedInfoFor(Facts(), "mx.example.net", {}), 1796690837);
  EXPECT_NE(h.find(";\r\n\tTue,  8 Dec 2026 00:47:17 +0000 (UTC)\r\n"), std::string::npos) << h;
}

TEST(FrontendReceived, TlsAndUnknownNames) {
  smtp::SessionFacts f = Facts();
  f.client_name = "unknown";
  f.helo = "";
  f.esmtp = true;
  f.tls = true;
  f.tls_version = "TLSv1.3";
  f.tls_cipher = "TLS_AES_256_GCM_SHA384";
  std::string h = smtp::FormatReceived(ReceivedInfoFor(f, "mx.example.net", {}), kNow);
  EXPECT_EQ(h,
            "Received: from unknown (unknown [198.51.100.7])\r\n"
            "\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384)\r\n"
            "\tby mx.example.net (sluice) with ESMTPS id 4Xk9aB2cD3;\r\n"
            "\tWed, 25 Nov 2026 13:27:09 +0000 (UTC)\r\n");
}

TEST(FrontendReceived, Ipv6ClientIsAnAddressLiteral) {
  smtp::SessionFacts f = Facts();
  f.client_address = "2001:db8::7";
  std::string h = smtp::FormatReceived(ReceivedInfoFor(f, "mx.example.net", {}), kNow);
  EXPECT_NE(h.find("(mail.example.org [IPv6:2001:db8::7])\r\n"), std::string::npos) << h;
}

TEST(FrontendReceived, HeloSmtpProtocol) {
  smtp::SessionFacts f = Facts();
  f.esmtp = false;
  std::string h = smtp::FormatReceived(ReceivedInfoFor(f, "mx.example.net", {}), kNow);
  EXPECT_NE(h.find(" with SMTP id "), std::string::npos) << h;
}

TEST(FrontendReceived, HostileHeloCannotAddLinesOrComments) {
  smtp::SessionFacts f = Facts();
  f.helo = "evil\r\nX-Injected: yes (x)";
  std::string h = smtp::FormatReceived(ReceivedInfoFor(f, "mx.example.net", {}), kNow);
  EXPECT_EQ(h.find("\r\nX-Injected"), std::string::npos) << h;
  EXPECT_EQ(h.find("(x)"), std::string::npos) << h;
  // Every line but the first is folded (starts with a tab) and every line ends in CRLF.
  size_t pos = 0;
  int lines = 0;
  while ((pos = h.find("\r\n", pos)) != std::string::npos) {
    pos += 2;
    ++lines;
    if (pos < h.size()) {
      EXPECT_EQ(h[pos], '\t') << h;
    }
  }
  EXPECT_EQ(lines, 3);
  EXPECT_EQ(h.find('\n'), h.find("\r\n") + 1);
}

TEST(FrontendReceived, LongHeloIsBounded) {
  smtp::SessionFacts f = Facts();
  f.helo = std::string(5000, 'h');
  std::string h = smtp::FormatReceived(ReceivedInfoFor(f, "mx.example.net", {std::string(400, 'r') + "@x"}), kNow);
  size_t start = 0;
  for (size_t end; (end = h.find("\r\n", start)) != std::string::npos; start = end + 2) {
    EXPECT_LE(end - start, 998u);
  }
}

}  // namespace
}  // namespace sluice::frontend
