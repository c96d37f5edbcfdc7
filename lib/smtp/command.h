// lib/smtp/command.h
//
// Server-side parsing of one SMTP command line (RFC 5321 §4.1) and of the MAIL/RCPT
// arguments with their ESMTP parameters: SIZE (RFC 1870), BODY=7BIT|8BITMIME (RFC 6152),
// SMTPUTF8 (RFC 6531), DSN RET/ENVID/NOTIFY/ORCPT (RFC 3461), AUTH= (RFC 4954).
// Pure functions on bytes already split into a line; no I/O.
//
// Errors are absl::Status values whose code selects the reply (see ReplyForCommandError):
//   kInvalidArgument  -> 501 syntax (address or parameter)
//   kUnimplemented    -> 555 5.5.4 unsupported parameter
//   kOutOfRange       -> 552 5.3.4 SIZE above the limit
//   kFailedPrecondition -> 500 5.5.2 control characters (bare CR/LF, NUL) in the line
// A status message is the reply text, "5.1.7 Bad sender address syntax", so logs show what
// the client was told.
// Never: accepts a line holding CR, LF or NUL; allocates without bound (input is bounded by
// the caller's line length limit).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "lib/smtp/reply.h"

namespace sluice::smtp {

enum class Verb {
  kUnknown, kHelo, kEhlo, kLhlo, kMail, kRcpt, kData, kBdat, kRset, kNoop, kQuit, kVrfy, kExpn,
  kHelp, kStarttls, kAuth, kXforward, kEtrn,
};

struct Command {
  Verb verb = Verb::kUnknown;
  std::string verb_text;  // the verb as received, upper-cased (for logs; "" when kUnknown is junk)
  std::string argument;   // everything after the verb and the spaces (or tabs) after it,
                          // trailing spaces removed
};

// Splits a command line (without its CRLF). Verbs are case-insensitive (§2.4).
absl::StatusOr<Command> ParseCommandLine(std::string_view line);

struct EsmtpParam {
  std::string keyword;  // upper-cased
  std::string value;    // raw (still xtext where the extension uses xtext)
  bool has_value = false;
};

struct ParseOptions {
  uint64_t size_limit = 0;          // 0: no limit; SIZE= above it is kOutOfRange
  bool allow_smtputf8 = true;       // accept SMTPUTF8 and UTF-8 in addresses; for RCPT pass
                                    // whether this transaction's MAIL had SMTPUTF8
  bool allow_dsn = true;            // accept RET/ENVID/NOTIFY/ORCPT
  bool allow_8bitmime = true;
  bool allow_auth_param = true;     // accept (and keep) AUTH=
};

struct MailFrom {
  std::string address;              // reverse path without brackets; "" for <>
  std::vector<EsmtpParam> params;   // every parameter, in order (relayed verbatim)
  std::optional<uint64_t> size;     // SIZE=
  std::string body;                 // "" or 7BIT / 8BITMIME
  bool smtputf8 = false;
  std::string ret;                  // FULL / HDRS
  std::string envid;                // xtext-decoded ENVID
  std::string auth;                 // xtext-decoded AUTH= mailbox ("<>" allowed)
};

struct RcptTo {
  std::string address;              // forward path without brackets ("postmaster" allowed)
  std::vector<EsmtpParam> params;
  std::string notify;               // NEVER or a comma list of SUCCESS,FAILURE,DELAY (upper-cased)
  std::string orcpt;                // "addr-type;xtext-decoded address"
};

// `argument` is Command::argument of MAIL ("FROM:<a@b> SIZE=10") / RCPT ("TO:<c@d> NOTIFY=…").
// Lenient as Postfix with strict_rfc821_envelopes=no: a space after the colon and a path
// without angle brackets are accepted.
absl::StatusOr<MailFrom> ParseMailFrom(std::string_view argument, const ParseOptions& opts);
absl::StatusOr<RcptTo> ParseRcptTo(std::string_view argument, const ParseOptions& opts);

// The reply for a Status from the parsers above (for MAIL when is_mail, else RCPT).
Reply ReplyForCommandError(const absl::Status& status, bool is_mail);

// Formats parameters back to wire form, " SIZE=10 BODY=8BITMIME" (leading space per param).
std::string FormatParams(const std::vector<EsmtpParam>& params);

}  // namespace sluice::smtp
