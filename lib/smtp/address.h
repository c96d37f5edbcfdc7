// lib/smtp/address.h
//
// RFC 5321 §4.1.2 path and mailbox syntax: local parts (dot-atom or quoted string), domains
// and address literals ([192.0.2.1], [IPv6:…]), source routes (accepted, ignored §C),
// SMTPUTF8 (RFC 6531) local parts and domains when allowed. Pure functions.
//
// Never: accepts control characters, unbalanced brackets or quotes; exceeds the lengths of
// §4.5.3.1 (local part 64, domain 255, path 256 octets).
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace sluice::smtp {

// Parses a path at the start of `in` ("<a@b>", "<>", or a bare address when `lenient`),
// returns the mailbox without brackets and source route, and advances `in` past it.
// An empty path "<>" is only valid when allow_empty (the MAIL reverse path).
absl::StatusOr<std::string> ParsePath(std::string_view& in, bool allow_empty, bool allow_utf8,
                                      bool lenient = true);

// Validates a mailbox "local@domain" (or "postmaster" alone when allow_postmaster).
bool IsValidMailbox(std::string_view mailbox, bool allow_utf8, bool allow_postmaster = false);
// Validates a domain name or an address literal.
bool IsValidDomain(std::string_view domain, bool allow_utf8);

// The domain part of a mailbox ("" for "postmaster" or a malformed one), lower-cased.
std::string DomainOf(std::string_view mailbox);

}  // namespace sluice::smtp
