// tests/fuzz/fuzz_command_line.cc
//
// ParseCommandLine + ParseMailFrom + ParseRcptTo on arbitrary lines. Invariants: nothing
// accepted holds CR, LF or NUL; every error maps to a 5xx syntax/parameter reply (or 552 for
// SIZE); an accepted MAIL/RCPT, formatted back to "<address>" + FormatParams, parses to the
// same result.
//
// Never: calls anything with side effects.
#include <string>
#include <string_view>

#include "lib/smtp/command.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using namespace sluice::smtp;

bool HasLineBreakOrNul(std::string_view s) {
  return s.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos;
}

void CheckErrorReply(const absl::Status& status, bool is_mail) {
  const Reply reply = ReplyForCommandError(status, is_mail);
  FUZZ_CHECK(reply.code == 500 || reply.code == 501 || reply.code == 552 || reply.code == 555);
  const std::string wire = reply.Format();
  FUZZ_CHECK(wire.size() >= 5 && wire.substr(wire.size() - 2) == "\r\n");
  FUZZ_CHECK(!HasLineBreakOrNul(std::string_view(wire).substr(0, wire.size() - 2)));
}

bool SameParams(const std::vector<EsmtpParam>& a, const std::vector<EsmtpParam>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].keyword != b[i].keyword || a[i].value != b[i].value || a[i].has_value != b[i].has_value) {
      return false;
    }
  }
  return true;
}

void CheckMail(std::string_view argument, const ParseOptions& opts) {
  absl::StatusOr<MailFrom> mail = ParseMailFrom(argument, opts);
  if (!mail.ok()) {
    CheckErrorReply(mail.status(), true);
    return;
  }
  FUZZ_CHECK(!HasLineBreakOrNul(argument));
  FUZZ_CHECK(mail->address.size() <= 254);
  if (opts.size_limit > 0 && mail->size) FUZZ_CHECK(*mail->size <= opts.size_limit);
  const std::string again = "FROM:<" + mail->address + ">" + FormatParams(mail->params);
  absl::StatusOr<MailFrom> mail2 = ParseMailFrom(again, opts);
  FUZZ_CHECK(mail2.ok());
  FUZZ_CHECK(mail2->address == mail->address);
  FUZZ_CHECK(SameParams(mail2->params, mail->params));
  FUZZ_CHECK(mail2->size == mail->size && mail2->body == mail->body && mail2->ret == mail->ret);
  FUZZ_CHECK(mail2->envid == mail->envid && mail2->auth == mail->auth && mail2->smtputf8 == mail->smtputf8);
}

void CheckRcpt(std::string_view argument, const ParseOptions& opts) {
  absl::StatusOr<RcptTo> rcpt = ParseRcptTo(argument, opts);
  if (!rcpt.ok()) {
    CheckErrorReply(rcpt.status(), false);
    return;
  }
  FUZZ_CHECK(!HasLineBreakOrNul(argument));
  FUZZ_CHECK(!rcpt->address.empty() && rcpt->address.size() <= 254);
  const std::string again = "TO:<" + rcpt->address + ">" + FormatParams(rcpt->params);
  absl::StatusOr<RcptTo> rcpt2 = ParseRcptTo(again, opts);
  FUZZ_CHECK(rcpt2.ok());
  FUZZ_CHECK(rcpt2->address == rcpt->address);
  FUZZ_CHECK(SameParams(rcpt2->params, rcpt->params));
  FUZZ_CHECK(rcpt2->notify == rcpt->notify && rcpt2->orcpt == rcpt->orcpt);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  // The first byte picks the options, the rest is the line.
  const uint8_t flags = data[0];
  const std::string_view line(reinterpret_cast<const char*>(data + 1), size - 1);
  ParseOptions opts;
  opts.size_limit = (flags & 1) ? 10240000 : 0;
  opts.allow_smtputf8 = (flags & 2) != 0;
  opts.allow_dsn = (flags & 4) != 0;
  opts.allow_8bitmime = (flags & 8) != 0;
  opts.allow_auth_param = (flags & 16) != 0;

  absl::StatusOr<Command> cmd = ParseCommandLine(line);
  if (!cmd.ok()) {
    FUZZ_CHECK(HasLineBreakOrNul(line));
    FUZZ_CHECK(ReplyForCommandError(cmd.status(), true).code == 500);
  } else {
    FUZZ_CHECK(!HasLineBreakOrNul(line));
    FUZZ_CHECK(cmd->argument.size() <= line.size());
    if (cmd->verb == Verb::kMail) CheckMail(cmd->argument, opts);
    if (cmd->verb == Verb::kRcpt) CheckRcpt(cmd->argument, opts);
  }
  // The argument parsers also see the raw bytes, line breaks and all.
  CheckMail(line, opts);
  CheckRcpt(line, opts);
  return 0;
}
