// lib/smtp/command.cc -- see command.h.
//
// Error statuses carry their reply text as "<enhanced code> <text>" in the message, so one
// place (ReplyForCommandError) turns any of them into the wire reply, and logs show the same
// words the client saw. Texts follow Postfix smtpd where Postfix has the error.
#include "lib/smtp/command.h"

#include <limits>

#include "lib/smtp/address.h"
#include "lib/smtp/xtext.h"

namespace sluice::smtp {
namespace {

struct VerbName {
  std::string_view name;
  Verb verb;
};

constexpr VerbName kVerbs[] = {
    {"HELO", Verb::kHelo}, {"EHLO", Verb::kEhlo}, {"LHLO", Verb::kLhlo},
    {"MAIL", Verb::kMail}, {"RCPT", Verb::kRcpt}, {"DATA", Verb::kData},
    {"BDAT", Verb::kBdat}, {"RSET", Verb::kRset}, {"NOOP", Verb::kNoop},
    {"QUIT", Verb::kQuit}, {"VRFY", Verb::kVrfy}, {"EXPN", Verb::kExpn},
    {"HELP", Verb::kHelp}, {"STARTTLS", Verb::kStarttls}, {"AUTH", Verb::kAuth},
    {"XFORWARD", Verb::kXforward}, {"ETRN", Verb::kEtrn},
};

// Longest verb text kept for logs; anything longer is junk, not a verb.
constexpr size_t kMaxVerbText = 16;
// RFC 3461 §4.4 and §4.2.
constexpr size_t kMaxEnvid = 100;
constexpr size_t kMaxOrcpt = 500;

char Upper(char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c; }

std::string ToUpper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = Upper(c);
  return out;
}

bool StartsWithIgnoreCase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (Upper(s[i]) != Upper(prefix[i])) return false;
  }
  return true;
}

bool IsSpace(char c) { return c == ' ' || c == '\t'; }
bool IsAlnum(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

void SkipSpaces(std::string_view& s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
}

absl::Status Syntax(std::string text) { return absl::InvalidArgumentError(std::move(text)); }
absl::Status Unsupported(std::string_view keyword) {
  return absl::UnimplementedError("5.5.4 Unsupported option: " + std::string(keyword));
}

// esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")   (RFC 5321 §4.1.2)
bool IsEsmtpKeyword(std::string_view k) {
  if (k.empty() || !IsAlnum(k[0])) return false;
  for (char c : k) {
    if (!IsAlnum(c) && c != '-') return false;
  }
  return true;
}

// esmtp-value = 1*(%d33-60 / %d62-126), plus UTF-8 when SMTPUTF8 is on (RFC 6531 §3.3).
bool IsEsmtpValue(std::string_view v, bool allow_utf8) {
  if (v.empty()) return false;
  for (char ch : v) {
    const auto c = static_cast<unsigned char>(ch);
    if (c >= 0x80 ? !allow_utf8 : (c < 33 || c > 126 || c == '=')) return false;
  }
  return true;
}

bool IsPrintableAscii(std::string_view s) {
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 32 || c > 126) return false;
  }
  return true;
}

// Splits " KEY=VALUE KEY2" into parameters; a keyword repeated is a syntax error.
absl::Status SplitParams(std::string_view rest, bool allow_utf8, std::vector<EsmtpParam>& out) {
  for (;;) {
    SkipSpaces(rest);
    if (rest.empty()) return absl::OkStatus();
    size_t end = 0;
    while (end < rest.size() && !IsSpace(rest[end])) ++end;
    const std::string_view token = rest.substr(0, end);
    rest.remove_prefix(end);

    EsmtpParam param;
    const size_t eq = token.find('=');
    const std::string_view keyword = token.substr(0, eq);
    if (!IsEsmtpKeyword(keyword)) return Syntax("5.5.4 Syntax error in parameters");
    param.keyword = ToUpper(keyword);
    if (eq != std::string_view::npos) {
      const std::string_view value = token.substr(eq + 1);
      if (!IsEsmtpValue(value, allow_utf8)) {
        return Syntax("5.5.4 Bad " + param.keyword + " parameter syntax");
      }
      param.value = std::string(value);
      param.has_value = true;
    }
    for (const EsmtpParam& seen : out) {
      if (seen.keyword == param.keyword) {
        return Syntax("5.5.4 Error: duplicate " + param.keyword + " parameter");
      }
    }
    out.push_back(std::move(param));
  }
}

// SIZE=1*20DIGIT (RFC 1870 §5); a value beyond uint64 saturates (and so exceeds any limit).
absl::StatusOr<uint64_t> ParseSize(const EsmtpParam& p) {
  if (!p.has_value || p.value.size() > 20) return Syntax("5.5.4 Bad message size syntax");
  uint64_t size = 0;
  for (char c : p.value) {
    if (c < '0' || c > '9') return Syntax("5.5.4 Bad message size syntax");
    const uint64_t digit = static_cast<uint64_t>(c - '0');
    if (size > (std::numeric_limits<uint64_t>::max() - digit) / 10) {
      size = std::numeric_limits<uint64_t>::max();
    } else {
      size = size * 10 + digit;
    }
  }
  return size;
}

bool HasNonAscii(std::string_view s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) >= 0x80) return true;
  }
  return false;
}

absl::Status ApplyMailParam(const EsmtpParam& p, const ParseOptions& opts, MailFrom& mail) {
  const std::string& k = p.keyword;
  if (k == "SIZE") {
    absl::StatusOr<uint64_t> size = ParseSize(p);
    if (!size.ok()) return size.status();
    if (opts.size_limit > 0 && *size > opts.size_limit) {
      return absl::OutOfRangeError("5.3.4 Message size exceeds fixed maximum message size");
    }
    mail.size = *size;
  } else if (k == "BODY") {
    if (!opts.allow_8bitmime) return Unsupported(k);  // BODY= belongs to 8BITMIME (RFC 6152)
    const std::string body = ToUpper(p.value);
    if (!p.has_value || (body != "7BIT" && body != "8BITMIME")) {
      return Syntax("5.5.4 Unsupported BODY parameter value");
    }
    mail.body = body;
  } else if (k == "SMTPUTF8") {
    if (!opts.allow_smtputf8) return Unsupported(k);
    if (p.has_value) return Syntax("5.5.4 Bad SMTPUTF8 parameter syntax");  // RFC 6531 §3.4
    mail.smtputf8 = true;
  } else if (k == "RET") {
    if (!opts.allow_dsn) return Unsupported(k);
    const std::string ret = ToUpper(p.value);
    if (ret != "FULL" && ret != "HDRS") return Syntax("5.5.4 Bad RET parameter syntax");
    mail.ret = ret;
  } else if (k == "ENVID") {
    if (!opts.allow_dsn) return Unsupported(k);
    absl::StatusOr<std::string> envid = XtextDecode(p.value);
    // RFC 3461 §4.4: at most 100 characters of printable US-ASCII.
    if (!p.has_value || p.value.size() > kMaxEnvid || !envid.ok() || !IsPrintableAscii(*envid)) {
      return Syntax("5.5.4 Bad ENVID parameter syntax");
    }
    mail.envid = *std::move(envid);
  } else if (k == "AUTH") {
    if (!opts.allow_auth_param) return Unsupported(k);
    absl::StatusOr<std::string> auth = XtextDecode(p.value);
    // RFC 4954 §5: AUTH=<> or AUTH=xtext(addr-spec).
    if (!p.has_value || !auth.ok() || auth->empty() || !IsPrintableAscii(*auth)) {
      return Syntax("5.5.4 Bad AUTH parameter syntax");
    }
    mail.auth = *std::move(auth);
  } else {
    return Unsupported(k);
  }
  return absl::OkStatus();
}

// NOTIFY = "NEVER" / 1#( "SUCCESS" / "FAILURE" / "DELAY" )   (RFC 3461 §4.1)
absl::Status ApplyNotify(const EsmtpParam& p, RcptTo& rcpt) {
  const absl::Status bad = Syntax("5.5.4 Error: Bad NOTIFY parameter syntax");
  if (!p.has_value) return bad;
  const std::string value = ToUpper(p.value);
  std::string_view rest = value;
  bool never = false;
  int elements = 0;
  for (;;) {
    const size_t comma = rest.find(',');
    const std::string_view item = rest.substr(0, comma);
    if (item == "NEVER") {
      never = true;
    } else if (item != "SUCCESS" && item != "FAILURE" && item != "DELAY") {
      return bad;  // also an empty element: "SUCCESS,,DELAY" or a trailing comma
    }
    ++elements;
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  if (never && elements > 1) return bad;  // NEVER combines with nothing
  rcpt.notify = value;
  return absl::OkStatus();
}

// ORCPT = addr-type ";" xtext   (RFC 3461 §4.2); "utf-8" addresses may be raw UTF-8 under
// SMTPUTF8 (RFC 6533 §3), which is not xtext, so they are kept as sent.
absl::Status ApplyOrcpt(const EsmtpParam& p, const ParseOptions& opts, RcptTo& rcpt) {
  const absl::Status bad = Syntax("5.5.4 Error: Bad ORCPT parameter syntax");
  if (!p.has_value || p.value.size() > kMaxOrcpt) return bad;
  const size_t semi = p.value.find(';');
  if (semi == std::string::npos || semi == 0) return bad;
  const std::string_view type = std::string_view(p.value).substr(0, semi);
  const std::string_view encoded = std::string_view(p.value).substr(semi + 1);
  for (char c : type) {
    if (!IsAlnum(c) && c != '-') return bad;
  }
  std::string address;
  absl::StatusOr<std::string> decoded = XtextDecode(encoded);
  if (decoded.ok()) {
    address = *std::move(decoded);
  } else if (opts.allow_smtputf8 && ToUpper(type) == "UTF-8") {
    address = std::string(encoded);
  } else {
    return bad;
  }
  for (char ch : address) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 32 || c == 127) return bad;  // would end up in a DSN's header fields
  }
  if (address.empty()) return bad;
  rcpt.orcpt = std::string(type) + ";" + address;
  return absl::OkStatus();
}

// "FROM:" / "TO:" then optional spaces (Postfix strict_rfc821_envelopes=no).
bool TakeKeyword(std::string_view& argument, std::string_view keyword) {
  if (!StartsWithIgnoreCase(argument, keyword)) return false;
  argument.remove_prefix(keyword.size());
  SkipSpaces(argument);
  return !argument.empty();
}

// RFC 5321 §4.1.1.3: "<Postmaster>" (any case) needs no domain.
bool TakePostmaster(std::string_view& argument, std::string& address) {
  for (std::string_view form : {std::string_view("<postmaster>"), std::string_view("postmaster")}) {
    if (!StartsWithIgnoreCase(argument, form)) continue;
    const std::string_view after = argument.substr(form.size());
    if (!after.empty() && !IsSpace(after.front())) continue;
    address = std::string(argument.substr(form.front() == '<' ? 1 : 0, 10));
    argument = after;
    return true;
  }
  return false;
}

}  // namespace

absl::StatusOr<Command> ParseCommandLine(std::string_view line) {
  for (char c : line) {
    // A bare LF or CR never ends a line (line_splitter.h), so it can only arrive here.
    if (c == '\n') return absl::FailedPreconditionError("5.5.2 Error: bare <LF> received");
    if (c == '\r') return absl::FailedPreconditionError("5.5.2 Error: bare <CR> received");
    if (c == '\0') return absl::FailedPreconditionError("5.5.2 Error: NUL character received");
  }
  Command cmd;
  size_t verb_end = 0;
  while (verb_end < line.size() && !IsSpace(line[verb_end])) ++verb_end;
  const std::string_view verb = line.substr(0, verb_end);
  std::string_view argument = line.substr(verb_end);
  SkipSpaces(argument);
  while (!argument.empty() && IsSpace(argument.back())) argument.remove_suffix(1);
  cmd.argument = std::string(argument);

  const std::string upper = ToUpper(verb);
  for (const VerbName& v : kVerbs) {
    if (upper == v.name) {
      cmd.verb = v.verb;
      cmd.verb_text = upper;
      return cmd;
    }
  }
  bool word = !verb.empty() && verb.size() <= kMaxVerbText;
  for (char c : verb) word = word && (IsAlnum(c) || c == '-' || c == '_');
  if (word) cmd.verb_text = upper;  // an unknown verb worth logging; junk is left out
  return cmd;
}

absl::StatusOr<MailFrom> ParseMailFrom(std::string_view argument, const ParseOptions& opts) {
  if (!TakeKeyword(argument, "FROM:")) return Syntax("5.5.4 Syntax: MAIL FROM:<address>");
  MailFrom mail;
  absl::StatusOr<std::string> address =
      ParsePath(argument, /*allow_empty=*/true, opts.allow_smtputf8, /*lenient=*/true);
  if (!address.ok()) return Syntax("5.1.7 Bad sender address syntax");
  mail.address = *std::move(address);

  absl::Status split = SplitParams(argument, opts.allow_smtputf8, mail.params);
  if (!split.ok()) return split;
  for (const EsmtpParam& p : mail.params) {
    absl::Status applied = ApplyMailParam(p, opts, mail);
    if (!applied.ok()) return applied;
  }
  // RFC 6531 §3.4: a UTF-8 reverse path requires the SMTPUTF8 parameter.
  if (!mail.smtputf8 && HasNonAscii(mail.address)) {
    return Syntax("5.6.7 Must declare SMTPUTF8 to send unicode address");
  }
  return mail;
}

absl::StatusOr<RcptTo> ParseRcptTo(std::string_view argument, const ParseOptions& opts) {
  if (!TakeKeyword(argument, "TO:")) return Syntax("5.5.4 Syntax: RCPT TO:<address>");
  RcptTo rcpt;
  if (!TakePostmaster(argument, rcpt.address)) {
    absl::StatusOr<std::string> address =
        ParsePath(argument, /*allow_empty=*/false, opts.allow_smtputf8, /*lenient=*/true);
    if (!address.ok()) return Syntax("5.1.3 Bad recipient address syntax");
    rcpt.address = *std::move(address);
  }

  absl::Status split = SplitParams(argument, opts.allow_smtputf8, rcpt.params);
  if (!split.ok()) return split;
  for (const EsmtpParam& p : rcpt.params) {
    absl::Status applied;
    if (p.keyword == "NOTIFY") {
      applied = opts.allow_dsn ? ApplyNotify(p, rcpt) : Unsupported(p.keyword);
    } else if (p.keyword == "ORCPT") {
      applied = opts.allow_dsn ? ApplyOrcpt(p, opts, rcpt) : Unsupported(p.keyword);
    } else {
      applied = Unsupported(p.keyword);
    }
    if (!applied.ok()) return applied;
  }
  return rcpt;
}

Reply ReplyForCommandError(const absl::Status& status, bool is_mail) {
  int code = 0;
  std::string_view default_enhanced;
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
      code = 501;
      default_enhanced = "5.5.4";
      break;
    case absl::StatusCode::kUnimplemented:
      code = 555;
      default_enhanced = "5.5.4";
      break;
    case absl::StatusCode::kOutOfRange:
      return replies::SizeParameterTooBig();
    case absl::StatusCode::kFailedPrecondition:
      code = 500;
      default_enhanced = "5.5.2";
      break;
    default:
      // Not a decision about the command: our own failure, so a 4xx (STYLE.md, 4xx rule).
      return replies::LocalError();
  }
  const std::string message(status.message());
  const size_t space = message.find(' ');
  const std::string first = message.substr(0, space);
  if (space != std::string::npos && IsEnhancedCode(first) && first[0] == '5') {
    return MakeReply(code, first, std::string_view(message).substr(space + 1));
  }
  // A status without reply text: an address error straight from ParsePath, or another
  // parser's message.
  if (code == 501 && message.rfind("bad address syntax", 0) == 0) {
    return is_mail ? replies::BadSenderSyntax() : replies::BadRecipientSyntax();
  }
  return MakeReply(code, default_enhanced, message);
}

std::string FormatParams(const std::vector<EsmtpParam>& params) {
  std::string out;
  for (const EsmtpParam& p : params) {
    out.push_back(' ');
    out.append(p.keyword);
    if (p.has_value) {
      out.push_back('=');
      out.append(p.value);
    }
  }
  return out;
}

}  // namespace sluice::smtp
