// lib/smtp/received_header.cc -- see received_header.h.
#include "lib/smtp/received_header.h"

#include <cstdio>

#include "absl/strings/str_cat.h"

namespace sluice::smtp {
namespace {

// Keeps printable ASCII (and UTF-8 bytes) only, bounded; a hostile HELO cannot inject lines.
std::string Clean(std::string_view s, size_t max = 255) {
  std::string out;
  for (unsigned char c : s) {
    if (out.size() >= max) break;
    if (c < 0x20 || c == 0x7f || c == '(' || c == ')') {
      out.push_back('?');
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out;
}

}  // namespace

std::string Rfc5322Date(std::time_t now) {
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[64];
  // Postfix's mail_date() exactly: the day of the month blank-padded ("Tue,  8 Dec"; RFC 5322
  // §3.3 allows the folding white space) and the zone's name as a comment after the offset.
  std::strftime(buf, sizeof buf, "%a, %e %b %Y %H:%M:%S +0000 (UTC)", &tm);
  return buf;
}

std::string FormatReceived(const ReceivedInfo& info, std::time_t now) {
  // Postfix smtpd: "from HELO (NAME [ADDR])", the name when there was no HELO, and an IPv6
  // address as the RFC 5321 literal "IPv6:…".
  const std::string name = info.client_name.empty() ? "unknown" : info.client_name;
  const bool ipv6 = info.client_address.find(':') != std::string::npos;
  std::string h = absl::StrCat("Received: from ", Clean(info.helo.empty() ? name : info.helo), " (", Clean(name),
                               " [", ipv6 ? "IPv6:" : "", Clean(info.client_address, 64), "])\r\n");
  if (!info.tls_version.empty()) {
    absl::StrAppend(&h, "\t(using ", Clean(info.tls_version, 32), " with cipher ", Clean(info.tls_cipher, 128), ")\r\n");
  }
  absl::StrAppend(&h, "\tby ", Clean(info.by_hostname), " (sluice) with ", Clean(info.protocol, 16), " id ",
                  Clean(info.id, 64));
  // With one recipient "for <rcpt>; DATE" ends the field, else the date has a line of its own.
  if (!info.for_recipient.empty()) {
    absl::StrAppend(&h, "\r\n\tfor <", Clean(info.for_recipient, 300), ">; ", Rfc5322Date(now), "\r\n");
  } else {
    absl::StrAppend(&h, ";\r\n\t", Rfc5322Date(now), "\r\n");
  }
  return h;
}

}  // namespace sluice::smtp
