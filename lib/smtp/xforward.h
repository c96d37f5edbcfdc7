// lib/smtp/xforward.h
//
// XFORWARD (Postfix XFORWARD_README): the upstream proxy tells the downstream server about
// the original client. Attributes NAME ADDR PORT PROTO HELO IDENT SOURCE; values are xtext,
// at most 255 characters each; a command is at most 512 bytes, so long sets are split over
// several commands; "[UNAVAILABLE]" and "[TEMPUNAVAIL]" stand for unknown values.
//
// Never: emits an attribute the server did not announce; emits a command over 512 bytes.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"

namespace sluice::smtp {

inline constexpr std::string_view kXforwardUnavailable = "[UNAVAILABLE]";
inline constexpr std::string_view kXforwardTempUnavailable = "[TEMPUNAVAIL]";

// Decoded attribute values (xtext removed). An unset optional was not sent; a value equal to
// kXforwardUnavailable/kXforwardTempUnavailable was sent as unknown.
struct XforwardAttrs {
  std::optional<std::string> name;    // client reverse name
  std::optional<std::string> addr;    // client address ("IPV6:" prefix removed)
  std::optional<std::string> port;    // client port
  std::optional<std::string> proto;   // SMTP / ESMTP
  std::optional<std::string> helo;    // HELO/EHLO argument
  std::optional<std::string> ident;   // session id of the upstream (sluice) / queue id (Postfix)
  std::optional<std::string> source;  // LOCAL / REMOTE

  bool empty() const {
    return !name && !addr && !port && !proto && !helo && !ident && !source;
  }
};

// The full command lines (without CRLF), "XFORWARD NAME=… ADDR=…", each ≤ 512 bytes
// including CRLF, holding only attributes listed in `announced` (the attribute names of the
// server's "250-XFORWARD NAME ADDR …" line, any case). Values longer than 255 characters are
// truncated; IPv6 addresses get the "IPV6:" prefix Postfix uses.
std::vector<std::string> EncodeXforward(const XforwardAttrs& attrs,
                                        const std::vector<std::string>& announced);

// Parses the argument of one XFORWARD command ("NAME=mail.example ADDR=192.0.2.1") and merges
// the attributes into `into`. An unknown attribute name or bad xtext is InvalidArgument
// (Postfix answers 501 then).
absl::Status ParseXforward(std::string_view argument, XforwardAttrs& into);

// The attribute names sluice supports, as advertised: "NAME ADDR PORT PROTO HELO IDENT SOURCE".
std::string_view XforwardAttributeList();

}  // namespace sluice::smtp
