// lib/smtp/reply.cc -- see reply.h.
//
// The reply table's texts follow Postfix smtpd's wording wherever Postfix has the reply, so
// logs and client behaviour look the same as behind a Postfix frontend.
#include "lib/smtp/reply.h"

namespace sluice::smtp {
namespace {

// A reply line must never carry a line end of its own: a CR or LF inside the text would
// let whoever chose the text (an address, a filter verdict) inject extra reply lines.
void AppendSafeText(std::string& out, std::string_view text) {
  for (char c : text) {
    out.push_back(c == '\r' || c == '\n' || c == '\0' ? ' ' : c);
  }
}

void AppendCode(std::string& out, int code) {
  if (code < 100 || code > 999) code = 451;  // never emit a malformed code
  out.push_back(static_cast<char>('0' + code / 100));
  out.push_back(static_cast<char>('0' + code / 10 % 10));
  out.push_back(static_cast<char>('0' + code % 10));
}

bool AllDigits(std::string_view s, size_t min_len, size_t max_len) {
  if (s.size() < min_len || s.size() > max_len) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

std::string Join(std::string_view a, std::string_view b) {
  std::string s(a);
  s.append(b);
  return s;
}

std::string Join(std::string_view a, std::string_view b, std::string_view c) {
  std::string s(a);
  s.append(b);
  s.append(c);
  return s;
}

}  // namespace

void Reply::AppendTo(std::string& out) const {
  const size_t n = lines.empty() ? 1 : lines.size();
  for (size_t i = 0; i < n; ++i) {
    std::string_view text = lines.empty() ? std::string_view() : std::string_view(lines[i]);
    const bool last = i + 1 == n;
    AppendCode(out, code);
    if (enhanced.empty() && text.empty()) {
      // RFC 5321 §4.2: Reply-code [ SP textstring ] CRLF on the last line; "250-" before.
      if (!last) out.push_back('-');
    } else {
      out.push_back(last ? ' ' : '-');
      if (!enhanced.empty()) {
        out.append(enhanced);
        if (!text.empty()) out.push_back(' ');
      }
      AppendSafeText(out, text);
    }
    out.append("\r\n");
  }
}

std::string Reply::Format() const {
  std::string out;
  AppendTo(out);
  return out;
}

std::string Reply::ToString() const {
  std::string out;
  AppendCode(out, code);
  if (!enhanced.empty()) {
    out.push_back(' ');
    out.append(enhanced);
  }
  for (size_t i = 0; i < lines.size(); ++i) {
    out.append(i == 0 ? " " : " / ");
    AppendSafeText(out, lines[i]);
  }
  return out;
}

Reply MakeReply(int code, std::string_view enhanced, std::string_view text) {
  Reply r;
  r.code = code;
  r.enhanced = std::string(enhanced);
  r.lines.emplace_back(text);
  return r;
}

// RFC 3463 §2: status-code = class "." subject "." detail; class = "2"/"4"/"5";
// subject = 1*3digit; detail = 1*3digit.
bool IsEnhancedCode(std::string_view s) {
  if (s.size() < 5 || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.') return false;
  std::string_view rest = s.substr(2);
  size_t dot = rest.find('.');
  if (dot == std::string_view::npos) return false;
  return AllDigits(rest.substr(0, dot), 1, 3) && AllDigits(rest.substr(dot + 1), 1, 3);
}

namespace replies {

Reply Greeting(std::string_view hostname, std::string_view banner) {
  std::string text = Join(hostname, " ESMTP");
  if (!banner.empty()) text = Join(text, " ", banner);
  return MakeReply(220, "", text);
}
Reply Closing(std::string_view /*hostname*/) { return MakeReply(221, "2.0.0", "Bye"); }
Reply ServiceNotAvailable(std::string_view hostname) {
  return MakeReply(421, "4.3.2", Join(hostname, " Service currently unavailable"));
}
Reply TooManyConnectionsFromClient(std::string_view hostname, std::string_view client) {
  return MakeReply(421, "4.7.0", Join(hostname, " Error: too many connections from ", client));
}
Reply ConnectionRateExceeded(std::string_view hostname, std::string_view client) {
  // Postfix words the rate limit exactly like the concurrency limit.
  return MakeReply(421, "4.7.0", Join(hostname, " Error: too many connections from ", client));
}
Reply TooManyErrors(std::string_view hostname) {
  return MakeReply(421, "4.7.0", Join(hostname, " Error: too many errors"));
}
Reply Timeout(std::string_view hostname) {
  return MakeReply(421, "4.4.2", Join(hostname, " Error: timeout exceeded"));
}
Reply SessionDeadline(std::string_view hostname) {
  return MakeReply(421, "4.4.2", Join(hostname, " Error: session time limit exceeded"));
}
Reply Killed(std::string_view hostname) {
  return MakeReply(421, "4.7.0", Join(hostname, " Error: session ended by administrator"));
}
Reply ShuttingDown(std::string_view hostname) {
  return MakeReply(421, "4.3.2", Join(hostname, " Service shutting down, closing transmission channel"));
}

Reply Ok() { return MakeReply(250, "2.0.0", "Ok"); }
Reply HeloOk(std::string_view hostname) { return MakeReply(250, "", hostname); }
Reply StartMailInput() { return MakeReply(354, "", "End data with <CR><LF>.<CR><LF>"); }
Reply Queued(std::string_view queue_id) {
  return MakeReply(250, "2.0.0", Join("Ok: queued as ", queue_id));
}
Reply Discarded() { return MakeReply(250, "2.0.0", "Ok: discarded"); }
Reply ReadyToStartTls() { return MakeReply(220, "2.0.0", "Ready to start TLS"); }
Reply Help() {
  return MakeReply(214, "2.0.0",
                   "Commands: HELO EHLO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP STARTTLS");
}
Reply VrfyDisabled() { return MakeReply(502, "5.5.1", "VRFY command is disabled"); }
Reply CannotVrfy() {
  // RFC 5321 §3.5.3 wording.
  return MakeReply(252, "2.0.0", "Cannot VRFY user, but will accept message and attempt delivery");
}

Reply UnknownCommand() { return MakeReply(502, "5.5.2", "Error: command not recognized"); }
Reply CommandNotImplemented() { return MakeReply(502, "5.5.1", "Error: command not implemented"); }
Reply LineTooLong() { return MakeReply(500, "5.5.0", "Error: line too long"); }
Reply BareNewlineInCommand() { return MakeReply(500, "5.5.2", "Error: bare <LF> received"); }
Reply BareNewlineInData() { return MakeReply(550, "5.5.2", "Error: bare <CR> or <LF> received"); }
Reply NulInData() { return MakeReply(550, "5.6.0", "Error: NUL character in message content"); }
Reply ProtocolSynchronization() { return MakeReply(554, "5.5.0", "Error: SMTP protocol synchronization"); }
Reply SyntaxError(std::string_view usage) { return MakeReply(501, "5.5.4", Join("Syntax: ", usage)); }
Reply BadSenderSyntax() { return MakeReply(501, "5.1.7", "Bad sender address syntax"); }
Reply BadRecipientSyntax() { return MakeReply(501, "5.1.3", "Bad recipient address syntax"); }
Reply UnsupportedParameter(std::string_view param) {
  return MakeReply(555, "5.5.4", Join("Unsupported option: ", param));
}
Reply NeedHelo() { return MakeReply(503, "5.5.1", "Error: send HELO/EHLO first"); }
Reply NeedMail() { return MakeReply(503, "5.5.1", "Error: need MAIL command"); }
Reply NeedRcpt() { return MakeReply(503, "5.5.1", "Error: need RCPT command"); }
Reply NestedMail() { return MakeReply(503, "5.5.1", "Error: nested MAIL command"); }
Reply AlreadyTls() { return MakeReply(554, "5.5.1", "Error: TLS already active"); }
Reply TlsNotAvailable() { return MakeReply(454, "4.7.0", "TLS not available due to local problem"); }
Reply XforwardNotAuthorized() { return MakeReply(550, "5.7.0", "Error: insufficient authorization"); }
Reply XforwardInTransaction() { return MakeReply(503, "5.5.1", "Error: MAIL transaction in progress"); }
Reply XforwardBadSyntax(std::string_view detail) {
  std::string text = "Syntax: XFORWARD attribute=value...";
  if (!detail.empty()) text = Join(text, " (", Join(detail, ")"));
  return MakeReply(501, "5.5.4", text);
}
Reply TooManyTransactions() { return MakeReply(452, "4.5.3", "Error: too many mail transactions"); }

Reply RelayDenied(std::string_view recipient) {
  return MakeReply(554, "5.7.1", Join("<", recipient, ">: Relay access denied"));
}
Reply TooManyRecipients() { return MakeReply(452, "4.5.3", "Error: too many recipients"); }
Reply MessageTooBig() { return MakeReply(552, "5.3.4", "Message size exceeds fixed limit"); }
Reply HeaderTooBig() { return MakeReply(552, "5.3.4", "Message header size exceeds limit"); }
Reply SizeParameterTooBig() {
  return MakeReply(552, "5.3.4", "Message size exceeds fixed maximum message size");
}
Reply MessageRateExceeded(std::string_view client) {
  return MakeReply(450, "4.7.1", Join("Error: too much mail from ", client));
}
Reply RecipientRateExceeded(std::string_view client) {
  return MakeReply(450, "4.7.1", Join("Error: too many recipients from ", client));
}
Reply TooManyHops() { return MakeReply(554, "5.4.6", "Error: too many hops"); }
Reply ClientNotAuthorized() { return MakeReply(554, "5.7.1", "Access denied"); }

// Postfix smtpd_check.c reject_unverified_address: "%.250s" of the reason.
Reply UndeliverableRecipient(std::string_view recipient, std::string_view why) {
  return MakeReply(550, "5.1.1",
                   Join(Join("<", recipient, ">: Recipient address rejected: undeliverable address: "), why.substr(0, 250)));
}
Reply UnverifiedRecipient(std::string_view recipient, std::string_view why) {
  return MakeReply(450, "4.1.1",
                   Join(Join("<", recipient, ">: Recipient address rejected: unverified address: "), why.substr(0, 250)));
}
Reply VerificationProblem(std::string_view recipient) {
  return MakeReply(450, "4.1.1", Join("<", recipient, ">: Recipient address rejected: address verification problem"));
}

Reply RuleReject() { return MakeReply(550, "5.7.1", "Message content rejected"); }
Reply RuleTempfail() { return MakeReply(451, "4.7.1", "Message content deferred"); }
Reply FilterReject() { return MakeReply(550, "5.7.1", "Message rejected"); }
Reply FilterTempfail() { return MakeReply(451, "4.7.1", "Try again later"); }
Reply MilterReject() { return MakeReply(550, "5.7.1", "Command rejected"); }
Reply MilterTempfail() {
  return MakeReply(451, "4.7.1", "Service unavailable - try again later");
}
Reply FilterFailureTempfail() {
  return MakeReply(451, "4.7.1", "Service unavailable - try again later");
}
Reply FilterFailureReject() { return MakeReply(550, "5.5.0", "Service unavailable"); }

Reply UnknownRelayRecipient(std::string_view recipient) {
  return MakeReply(550, "5.1.1", Join("<", recipient, ">: Recipient address rejected: User unknown in relay recipient table"));
}
Reply AccessRejected(int code, std::string_view enhanced, std::string_view name, std::string_view what,
                     std::string_view text) {
  return MakeReply(code, enhanced, Join(Join("<", name, ">: "), Join(what, " rejected: ", text)));
}
Reply PolicyServerError() { return MakeReply(451, "4.3.5", "Server configuration problem"); }
Reply DnsblBlocked(std::string_view client, std::string_view sites) {
  return MakeReply(554, "5.7.1", Join(Join("Service unavailable; client [", client, "] blocked using "), sites, ""));
}

Reply ProxyError() { return MakeReply(451, "4.3.0", "Error: queue file write error"); }
Reply TransactionTempUnavailable() {
  return MakeReply(451, "4.3.0", "Service temporarily unavailable, try again");
}
Reply QueueFull() { return MakeReply(452, "4.3.1", "Insufficient system storage"); }
Reply QueueWriteError() { return MakeReply(451, "4.3.0", "Error: queue file write error"); }
Reply LocalError() { return MakeReply(451, "4.3.0", "Error: local error in processing"); }

}  // namespace replies
}  // namespace sluice::smtp
