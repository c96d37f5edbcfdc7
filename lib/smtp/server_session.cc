// lib/smtp/server_session.cc -- see server_session.h.
#include "lib/smtp/server_session.h"

#include <optional>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "asio/experimental/as_tuple.hpp"
#include "asio/post.hpp"
#include "asio/steady_timer.hpp"
#include "asio/use_awaitable.hpp"
#include "lib/observe/log.h"
#include "lib/smtp/command.h"
#include "lib/smtp/data_reader.h"
#include "lib/smtp/line_splitter.h"
#include "lib/smtp/message_id_scanner.h"
#include "lib/smtp/xforward.h"

namespace sluice::smtp {

void SessionControl::Kill(bool shutdown) {
  if (shutdown) shutdown_.store(true);
  kill_.store(true);
  CancelOnExecutor(false);
}

void SessionControl::Drain() {
  drain_.store(true);
  CancelOnExecutor(true);
}

void SessionControl::CancelOnExecutor(bool only_if_idle) {
  // The stream pointer is only valid on the session's own thread: hop there first; the
  // session detaches before its stream goes away.
  asio::post(executor_, [self = shared_from_this(), only_if_idle] {
    if (self->stream_ == nullptr) return;
    if (only_if_idle && !self->idle_.load()) return;
    self->stream_->CancelPending();
    // A kill must not wait for the handler's own peer (a filter that takes its time): the
    // handler aborts what it waits on, answers with its failure reply, and the session then
    // ends with 421 at the loop head.
    if (!only_if_idle && self->handler_ != nullptr) self->handler_->OnKill();
  });
}

namespace {

constexpr size_t kReadChunk = 16 * 1024;
// How much of an unauthorized pipelining is logged (Postfix logs the first 100 bytes).
constexpr size_t kLoggedInputBytes = 100;

// RFC 2920 §3.1: after these the client must wait for the reply (their outcome changes what
// it may send next); RFC 3207 §4 adds STARTTLS (what follows it in the clear is injection,
// CVE-2011-0411). Postfix's smtpd_forbid_unauth_pipelining list, plus STARTTLS.
bool EndsPipelinedGroup(Verb v) {
  switch (v) {
    case Verb::kHelo:
    case Verb::kEhlo:
    case Verb::kData:
    case Verb::kNoop:
    case Verb::kVrfy:
    case Verb::kExpn:
    case Verb::kStarttls:
      return true;
    default:
      return false;
  }
}

// The command as Postfix's reject lines name it.
std::string_view CommandName(Verb verb) {
  switch (verb) {
    case Verb::kHelo: return "HELO";
    case Verb::kEhlo: return "EHLO";
    case Verb::kLhlo: return "LHLO";
    case Verb::kMail: return "MAIL";
    case Verb::kRcpt: return "RCPT";
    case Verb::kData: return "DATA";
    case Verb::kBdat: return "BDAT";
    case Verb::kRset: return "RSET";
    case Verb::kNoop: return "NOOP";
    case Verb::kQuit: return "QUIT";
    case Verb::kVrfy: return "VRFY";
    case Verb::kExpn: return "EXPN";
    case Verb::kHelp: return "HELP";
    case Verb::kStarttls: return "STARTTLS";
    case Verb::kAuth: return "AUTH";
    case Verb::kXforward: return "XFORWARD";
    case Verb::kEtrn: return "ETRN";
    case Verb::kUnknown: break;
  }
  return "UNKNOWN";
}

// Which of the session's own limits or rules a reply of the session enforces (check=).
std::string_view CheckOfCommandError(const Reply& r) {
  if (r.code == 552) return "message_size";  // MAIL SIZE= over message_size_limit
  return "syntax";
}

class Session {
 public:
  Session(SmtpStream& stream, ServerHandler& handler, SessionFacts& facts, const ServerSettings& s,
          std::shared_ptr<SessionControl> control)
      : stream_(stream), handler_(handler), facts_(facts), s_(s), control_(std::move(control)),
        started_(std::chrono::steady_clock::now()) {}

  asio::awaitable<void> Run();

 private:
  enum class ReadResult { kLine, kTooLong, kClosed, kTimeout, kInterrupted };

  void Respond(const Reply& r) {
    r.AppendTo(out_);
    last_code_ = r.code;
    if (r.code >= 400) ++errors_;
  }
  // A refusal the session gives for a rule of its own (`check`: a limit, syntax, protocol
  // order); logged as one line (dialogue_log.h).
  void Refuse(const Reply& r, std::string_view check, std::string_view to = {});
  // The handler's reply to the current command; a refusal is logged with the handler's note
  // (taken after every handler call, so none is left over for a later refusal).
  void RespondForHandler(const Reply& r, const RefusalNote& note, std::string_view to = {});
  // The end of a transaction's DATA (or DATA itself refused): one line per recipient,
  // event=accept for a positive reply, event=reject otherwise.
  // `client`: as it was before the handler ended the transaction (a stage behind the
  // frontend forgets the XFORWARD client with it).
  void LogTransactionEnd(const DialogueClient& client, std::string_view command, const Reply& r,
                         const RefusalNote& note);
  // `from`: the sender the line names; by default this transaction's, if any.
  void LogRefusal(const Reply& r, std::string_view to, const RefusalNote& note,
                  std::optional<std::string_view> from = std::nullopt);
  DialogueClient Client() const;
  asio::awaitable<bool> Flush();
  // Flushes unless another complete command is already buffered (RFC 2920 §3.2).
  asio::awaitable<bool> FlushIfNoPipelinedInput();
  asio::awaitable<ReadResult> ReadLine(std::string& line);
  asio::awaitable<bool> ErrorSleepAndCheck();
  // The greeting, with the pregreet check (and greet_wait) first; false: the session ends.
  asio::awaitable<bool> Greet();
  // Input is waiting that no reply has been sent for yet (read ahead, or in the socket).
  bool InputWaiting() { return !in_.empty() || stream_.ReadableNow() > 0; }
  // After the final dot, before its reply: anything but a pipelined QUIT (RFC 2920 §3.2's
  // own example; Postfix's smtp client sends one) is input the client had no right to send.
  asio::awaitable<bool> InputAfterEndOfData();
  // 554 5.5.0, the input logged (escaped) and counted; the session then ends.
  asio::awaitable<void> RefuseUnauthPipelining(std::string_view after);

  asio::awaitable<void> DoHelo(const Command& c, bool esmtp);
  asio::awaitable<void> DoMail(const Command& c);
  asio::awaitable<void> DoRcpt(const Command& c);
  // Returns false when the session must end (timeout, lost client, kill).
  asio::awaitable<bool> DoData(const Command& c);
  asio::awaitable<bool> DoStartTls(const Command& c);
  asio::awaitable<void> DoXforward(const Command& c);
  asio::awaitable<void> ResetTransaction();
  bool CountJunk();

  Reply EhloReply() const;
  ParseOptions MakeParseOptions() const;
  bool XforwardAllowed() const {
    return s_.xforward_allowed || (s_.xforward_by_certificate && facts_.tls_client_verified);
  }
  // smtpd_timeout, or less when the session deadline comes first (then the read times out
  // and the loop head ends the session with the deadline's reply).
  Duration ReadTimeout() const {
    if (s_.session_deadline.count() <= 0) return s_.command_timeout;
    Duration left = s_.session_deadline - (std::chrono::steady_clock::now() - started_);
    if (left < std::chrono::milliseconds(1)) left = std::chrono::milliseconds(1);
    return std::min<Duration>(s_.command_timeout, left);
  }
  bool PastDeadline() const {
    return s_.session_deadline.count() > 0 &&
           std::chrono::steady_clock::now() - started_ > s_.session_deadline;
  }

  SmtpStream& stream_;
  ServerHandler& handler_;
  SessionFacts& facts_;
  const ServerSettings& s_;
  std::shared_ptr<SessionControl> control_;
  std::chrono::steady_clock::time_point started_;

  std::string in_;   // received, not yet consumed
  std::string out_;  // replies not yet sent
  int last_code_ = 0;
  uint32_t errors_ = 0;
  uint32_t junk_ = 0;
  bool have_mail_ = false;
  bool mail_smtputf8_ = false;  // this transaction's MAIL had SMTPUTF8
  uint32_t rcpts_ = 0;
  uint32_t overshoot_ = 0;  // recipients refused past max_recipients in this transaction
  std::string_view command_;     // the command being answered, for log lines
  std::string mail_from_;        // this transaction's sender, for log lines
  std::vector<std::string> rcpt_addresses_;  // accepted, for the end-of-DATA lines (max_recipients)
  bool end_ = false;
};

DialogueClient Session::Client() const {
  DialogueClient c;
  c.session_id = facts_.session_id;
  c.name_addr = absl::StrCat(facts_.client_name.empty() ? "unknown" : facts_.client_name, "[",
                             facts_.client_address, "]");
  c.helo = facts_.helo;
  c.proto = facts_.esmtp ? "ESMTP" : "SMTP";
  handler_.DescribeClient(c);
  return c;
}

void Session::LogRefusal(const Reply& r, std::string_view to, const RefusalNote& note,
                         std::optional<std::string_view> from) {
  DialogueLine line;
  line.command = command_;
  line.reply = &r;
  line.from = from;
  if (!from && have_mail_) line.from = mail_from_;
  line.to = to;
  line.note = note;
  LogDialogue(Client(), line);
}

void Session::Refuse(const Reply& r, std::string_view check, std::string_view to) {
  Respond(r);
  RefusalNote note;
  note.check = std::string(check);
  LogRefusal(r, to, note);
}

void Session::RespondForHandler(const Reply& r, const RefusalNote& note, std::string_view to) {
  Respond(r);
  if (r.code >= 400) LogRefusal(r, to, note);
}

void Session::LogTransactionEnd(const DialogueClient& client, std::string_view command, const Reply& r,
                                const RefusalNote& note) {
  const std::string queue_id = r.positive() ? QueueIdFromReply(r) : std::string();
  DialogueLine line;
  line.event = r.positive() ? "accept" : "reject";
  line.queue_id = queue_id.empty() ? std::string_view("NOQUEUE") : std::string_view(queue_id);
  line.command = command;
  line.reply = &r;
  line.from = mail_from_;
  if (!r.positive()) line.note = note;
  line.message_id = facts_.message_id;
  for (const std::string& to : rcpt_addresses_) {
    line.to = to;
    LogDialogue(client, line);
  }
}

asio::awaitable<bool> Session::Flush() {
  if (out_.empty()) co_return true;
  std::error_code ec = co_await stream_.WriteAll(out_, s_.command_timeout);
  out_.clear();
  co_return !ec;
}

asio::awaitable<bool> Session::FlushIfNoPipelinedInput() {
  LineResult next = NextLine(in_, s_.line_length_limit);
  if (next.status == LineStatus::kNeedMore) co_return co_await Flush();
  co_return true;
}

asio::awaitable<Session::ReadResult> Session::ReadLine(std::string& line) {
  for (;;) {
    LineResult r = NextLine(in_, s_.line_length_limit);
    if (r.status == LineStatus::kLine) {
      line.assign(r.line);
      in_.erase(0, r.consumed);
      co_return ReadResult::kLine;
    }
    if (r.status == LineStatus::kTooLong) {
      // Discard up to the end of the line without buffering it.
      bool found = false;
      for (;;) {
        size_t n = SkipToLineEnd(in_, found);
        in_.erase(0, n);
        if (found) co_return ReadResult::kTooLong;
        std::error_code ec = co_await stream_.ReadInto(in_, kReadChunk, ReadTimeout(), SmtpStream::Wait::kBusy);
        if (ec == asio::error::timed_out) co_return ReadResult::kTimeout;
        if (ec == asio::error::operation_aborted) co_return ReadResult::kInterrupted;
        if (ec) co_return ReadResult::kClosed;
      }
    }
    // Need more input: anything we owe the client goes out before we wait (RFC 2920).
    if (!co_await Flush()) co_return ReadResult::kClosed;
    bool idle = !have_mail_ && in_.empty();
    control_->set_idle(idle, facts_.transactions > 0);
    if (idle && (control_->drain_requested() || control_->kill_requested())) {
      control_->set_idle(false, false);
      co_return ReadResult::kInterrupted;
    }
    if (in_.empty()) {
      // A session waiting for its client keeps no buffers: the EHLO reply, the last command
      // and its line would otherwise hold their heap capacity for as long as the client
      // sits idle (thousands of idle sessions per process, a few KB each at most). The
      // next reply or read allocates again, which costs nothing next to the network wait.
      std::string().swap(in_);
      std::string().swap(out_);  // empty: Flush() above sent it
      std::string().swap(line);  // the previous command, already handled
    }
    // Between transactions a client may think for minutes (an idle wait holds no buffer);
    // inside one, the next command comes soon (a busy read: one system call, stream.h).
    SmtpStream::Wait wait = idle ? SmtpStream::Wait::kIdle : SmtpStream::Wait::kBusy;
    std::error_code ec = co_await stream_.ReadInto(in_, kReadChunk, ReadTimeout(), wait);
    control_->set_idle(false, false);
    if (ec == asio::error::timed_out) co_return ReadResult::kTimeout;
    if (ec == asio::error::operation_aborted) co_return ReadResult::kInterrupted;
    if (ec) co_return ReadResult::kClosed;
  }
}

asio::awaitable<bool> Session::Greet() {
  Reply greeting = replies::Greeting(s_.hostname, s_.banner);
  if (s_.forbid_unauth_pipelining && s_.greet_wait.count() > 0) {
    // postscreen's greet wait: the greeting's first line now, its last one after the wait
    // (RFC 5321 §4.2.1 multiline reply). A client that speaks before the last line did not
    // wait for the greeting; one that hangs up meanwhile is simply gone.
    std::string first_line = greeting.Format();
    first_line[3] = '-';
    if (co_await stream_.WriteAll(first_line, s_.command_timeout)) co_return false;
    if (co_await stream_.WaitReadable(s_.greet_wait)) {
      if (stream_.ReadableNow() > 0) co_await RefuseUnauthPipelining("CONNECT");
      co_return false;
    }
  } else if (s_.forbid_unauth_pipelining && stream_.ReadableNow() > 0) {
    // Postfix smtpd's pregreet check: whatever arrived while the connect checks ran.
    co_await RefuseUnauthPipelining("CONNECT");
    co_return false;
  }
  Respond(greeting);
  co_return co_await Flush();
}

asio::awaitable<bool> Session::InputAfterEndOfData() {
  static constexpr std::string_view kQuit = "QUIT\r\n";
  for (;;) {
    const size_t n = std::min(in_.size(), kQuit.size());
    if (!absl::EqualsIgnoreCase(absl::string_view(in_.data(), n), absl::string_view(kQuit.data(), n))) co_return true;
    if (in_.size() > kQuit.size()) co_return true;  // more behind the QUIT
    if (stream_.ReadableNow() == 0) co_return false;
    if (in_.size() == kQuit.size()) co_return true;
    // Part of a QUIT so far, and more has arrived: read just enough to tell.
    std::error_code ec = co_await stream_.ReadInto(in_, kQuit.size() + 1 - in_.size(), s_.command_timeout);
    if (ec) co_return false;  // the next read finds the client gone
  }
}

asio::awaitable<void> Session::RefuseUnauthPipelining(std::string_view after) {
  if (in_.empty() && stream_.ReadableNow() > 0) {
    // The input is still in the socket: read some of it for the log (it is there, so the
    // read returns at once, but a TLS record may be partial: bounded anyway).
    (void)co_await stream_.ReadInto(in_, kLoggedInputBytes,
                                    std::min<Duration>(s_.command_timeout, std::chrono::seconds(5)));
  }
  handler_.OnLimitHit("unauth_pipelining");
  observe::Info("improper_pipelining")
      .Kv("session", facts_.session_id)
      .Kv("client", facts_.client_address)
      .Kv("after", after)
      .Kv("input", std::string_view(in_).substr(0, kLoggedInputBytes));  // the log escapes it
  Respond(replies::ProtocolSynchronization());
  co_await Flush();
}

asio::awaitable<bool> Session::ErrorSleepAndCheck() {
  if (errors_ >= s_.hard_error_limit) {
    Respond(replies::TooManyErrors(s_.hostname));
    handler_.OnLimitHit("hard_errors");
    observe::Info("hard_error_limit").Kv("session", facts_.session_id).Kv("client", facts_.client_address);
    co_await Flush();
    co_return false;
  }
  if (errors_ > s_.soft_error_limit && last_code_ >= 400 && s_.error_sleep.count() > 0) {
    // Postfix smtpd_error_sleep_time: slow down a client that keeps making errors.
    asio::steady_timer t(stream_.executor());
    t.expires_after(s_.error_sleep);
    co_await t.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
  }
  co_return true;
}

bool Session::CountJunk() {
  // smtpd_junk_command_limit: past it, each NOOP/RSET/VRFY/… counts as an error.
  if (++junk_ <= s_.junk_command_limit) return false;
  handler_.OnLimitHit("junk_commands");
  return true;
}

ParseOptions Session::MakeParseOptions() const {
  ParseOptions o;
  o.size_limit = s_.message_size_limit;
  o.allow_smtputf8 = s_.advertise_smtputf8;
  o.allow_dsn = s_.advertise_dsn;
  o.allow_8bitmime = s_.advertise_8bitmime;
  return o;
}

Reply Session::EhloReply() const {
  Reply r;
  r.code = 250;
  r.lines.push_back(s_.hostname);
  r.lines.push_back("PIPELINING");
  r.lines.push_back(s_.message_size_limit > 0 ? absl::StrCat("SIZE ", s_.message_size_limit) : "SIZE");
  if (s_.enable_vrfy) r.lines.push_back("VRFY");
  if (s_.tls != nullptr && !facts_.tls) r.lines.push_back("STARTTLS");
  r.lines.push_back("ENHANCEDSTATUSCODES");
  if (s_.advertise_8bitmime) r.lines.push_back("8BITMIME");
  if (s_.advertise_dsn) r.lines.push_back("DSN");
  if (s_.advertise_smtputf8) r.lines.push_back("SMTPUTF8");
  if (XforwardAllowed()) r.lines.push_back(absl::StrCat("XFORWARD ", std::string(XforwardAttributeList())));
  std::string extra = handler_.ExtraEhloKeywords();
  if (!extra.empty()) r.lines.push_back(extra);
  return r;
}

asio::awaitable<void> Session::ResetTransaction() {
  if (have_mail_) co_await handler_.OnReset();
  have_mail_ = false;
  rcpts_ = 0;
  overshoot_ = 0;
  rcpt_addresses_.clear();
  facts_.message_id.clear();
}

asio::awaitable<void> Session::DoHelo(const Command& c, bool esmtp) {
  if (c.argument.empty()) {
    Refuse(replies::SyntaxError(esmtp ? "EHLO hostname" : "HELO hostname"), "syntax");
    co_return;
  }
  co_await ResetTransaction();  // RFC 5321 §4.1.4: EHLO resets the state like RSET
  facts_.helo = c.argument;
  facts_.esmtp = esmtp;
  Reply r = co_await handler_.OnHelo();
  RefusalNote note = handler_.TakeRefusalNote();
  if (!r.empty() && !r.positive()) {
    RespondForHandler(r, note);
    co_return;
  }
  Respond(esmtp ? EhloReply() : replies::HeloOk(s_.hostname));
}

asio::awaitable<void> Session::DoMail(const Command& c) {
  if (s_.require_helo && facts_.helo.empty()) {
    Refuse(replies::NeedHelo(), "protocol");
    co_return;
  }
  if (have_mail_) {
    Refuse(replies::NestedMail(), "protocol");
    co_return;
  }
  if (s_.max_transactions > 0 && facts_.transactions >= s_.max_transactions) {
    handler_.OnLimitHit("max_transactions");
    Refuse(replies::TooManyTransactions(), "max_transactions");
    co_return;
  }
  auto mail = ParseMailFrom(c.argument, MakeParseOptions());
  if (!mail.ok()) {
    Reply refusal = ReplyForCommandError(mail.status(), /*is_mail=*/true);
    Respond(refusal);
    // A SIZE= over the limit still names its sender (Postfix: from=<s> on the reject line).
    ParseOptions unlimited = MakeParseOptions();
    unlimited.size_limit = 0;
    auto named = ParseMailFrom(c.argument, unlimited);
    RefusalNote note;
    note.check = std::string(CheckOfCommandError(refusal));
    std::optional<std::string_view> from;
    if (named.ok()) from = named->address;
    LogRefusal(refusal, "", note, from);
    co_return;
  }
  Reply r = co_await handler_.OnMail(*mail);
  RefusalNote note = handler_.TakeRefusalNote();
  if (r.empty()) r = replies::Ok();
  Respond(r);
  if (r.positive()) {
    have_mail_ = true;
    mail_smtputf8_ = mail->smtputf8;
    mail_from_ = mail->address;
  } else if (r.code >= 400) {
    // The refused sender is named too (Postfix: "reject: MAIL from …; from=<s> proto=…").
    LogRefusal(r, "", note, mail->address);
  }
}

asio::awaitable<void> Session::DoRcpt(const Command& c) {
  if (!have_mail_) {
    Refuse(replies::NeedMail(), "protocol");
    co_return;
  }
  ParseOptions opts = MakeParseOptions();
  opts.allow_smtputf8 = mail_smtputf8_;  // RFC 6531 §3.4: UTF-8 recipients need SMTPUTF8 on MAIL
  auto rcpt = ParseRcptTo(c.argument, opts);
  if (rcpts_ >= s_.max_recipients) {
    handler_.OnLimitHit("max_recipients");
    Refuse(replies::TooManyRecipients(), "max_recipients", rcpt.ok() ? std::string_view(rcpt->address) : "");
    // Postfix smtpd_recipient_overshoot_limit: a sender splits a long recipient list over
    // transactions, so the first so many refusals past the limit are not errors; past them
    // each is, and the hard error limit ends the session.
    if (++overshoot_ <= s_.recipient_overshoot_limit) {
      --errors_;
    } else {
      handler_.OnLimitHit("recipient_overshoot");
    }
    co_return;
  }
  if (!rcpt.ok()) {
    Reply refusal = ReplyForCommandError(rcpt.status(), /*is_mail=*/false);
    Refuse(refusal, CheckOfCommandError(refusal));
    co_return;
  }
  Reply r = co_await handler_.OnRcpt(*rcpt);
  RefusalNote note = handler_.TakeRefusalNote();
  if (r.empty()) r = replies::Ok();
  if (r.positive()) {
    ++rcpts_;
    rcpt_addresses_.push_back(rcpt->address);
  }
  RespondForHandler(r, note, rcpt->address);
}

asio::awaitable<bool> Session::DoData(const Command& c) {
  if (!c.argument.empty()) {
    Refuse(replies::SyntaxError("DATA"), "syntax");
    co_return true;
  }
  if (!have_mail_) {
    Refuse(replies::NeedMail(), "protocol");
    co_return true;
  }
  if (rcpts_ == 0) {
    Refuse(replies::NeedRcpt(), "protocol");
    co_return true;
  }
  const DialogueClient data_client = Client();
  Reply go = co_await handler_.OnData();
  RefusalNote data_note = handler_.TakeRefusalNote();
  if (!go.empty() && go.code != 354) {
    Respond(go);
    if (go.code >= 400) LogTransactionEnd(data_client, "DATA", go, data_note);
    co_return true;
  }
  if (s_.forbid_unauth_pipelining && InputWaiting()) {
    // Content sent while the handler prepared (e.g. waited for the filter's 354): the
    // client did not wait for the 354. Nothing of it is read as the message.
    co_await ResetTransaction();
    co_await RefuseUnauthPipelining("DATA");
    co_return false;
  }
  Respond(go.empty() ? replies::StartMailInput() : go);
  if (!co_await Flush()) {
    co_await ResetTransaction();
    co_return false;
  }

  DataReader reader;
  MessageIdScanner message_id;
  std::string chunk;
  bool too_big = false;
  bool header_too_big = false;
  bool failed = false;
  for (;;) {
    const size_t decoded_before = chunk.size();
    DataReader::Result r = reader.Feed(in_, chunk);
    in_.erase(0, r.consumed);
    if (!message_id.header_done()) {
      message_id.Feed(std::string_view(chunk).substr(decoded_before));
      if (r.done) message_id.Finish();
      if (!message_id.message_id().empty()) facts_.message_id = message_id.message_id();
    }
    if (!too_big && s_.message_size_limit > 0 && reader.content_bytes() > s_.message_size_limit) too_big = true;
    if (!header_too_big && reader.header_bytes() > s_.header_size_limit) header_too_big = true;
    const bool nul = reader.nul() && !s_.allow_nul_in_content;
    bool rejected = too_big || header_too_big || reader.bare_newline() || nul;
    if (rejected || failed) {
      chunk.clear();  // content of a rejected message goes nowhere
    } else if (!chunk.empty() && (chunk.size() >= s_.content_chunk_bytes || r.done)) {
      absl::Status st = co_await handler_.OnContent(chunk);
      chunk.clear();
      if (!st.ok()) {
        failed = true;
        observe::Warn("content_relay_failed").Kv("session", facts_.session_id).Kv("error", std::string(st.message()));
      }
    }
    if (r.done) break;
    // The session deadline bounds the content too: a client sending a byte now and then
    // never lets smtpd_timeout run out.
    std::error_code ec = co_await stream_.ReadInto(in_, kReadChunk, ReadTimeout(), SmtpStream::Wait::kBusy);
    if (ec) {
      // Lost client, timeout or kill in the middle of the content: nothing is delivered.
      co_await ResetTransaction();
      if (ec == asio::error::timed_out && PastDeadline()) {
        handler_.OnLimitHit("session_deadline");
        Respond(replies::SessionDeadline(s_.hostname));
        co_await Flush();
      } else if (ec == asio::error::timed_out) {
        handler_.OnLimitHit("timeout");
        Respond(replies::Timeout(s_.hostname));
        co_await Flush();
      } else if (ec == asio::error::operation_aborted && control_->kill_requested()) {
        Respond(control_->shutdown_requested() ? replies::ShuttingDown(s_.hostname) : replies::Killed(s_.hostname));
        co_await Flush();
      }
      co_return false;
    }
  }

  // Input behind the final dot (a smuggled next transaction): the message is not passed on
  // and the session ends.
  bool pipelined = false;
  if (s_.forbid_unauth_pipelining) pipelined = co_await InputAfterEndOfData();
  const bool nul = reader.nul() && !s_.allow_nul_in_content;
  DataOutcome outcome = pipelined             ? DataOutcome::kUnauthPipelining
                        : reader.bare_newline() ? DataOutcome::kBareNewline
                        : nul                 ? DataOutcome::kNulCharacter
                        : too_big             ? DataOutcome::kTooBig
                        : header_too_big      ? DataOutcome::kHeaderTooBig
                        : failed              ? DataOutcome::kHandlerFailed
                                              : DataOutcome::kComplete;
  const DialogueClient end_client = Client();
  Reply final_reply = co_await handler_.OnDataEnd(outcome);
  RefusalNote handler_note = handler_.TakeRefusalNote();
  if (outcome == DataOutcome::kUnauthPipelining) {
    have_mail_ = false;
    rcpts_ = 0;
    overshoot_ = 0;
    co_await RefuseUnauthPipelining("END-OF-MESSAGE");
    co_return false;
  }
  switch (outcome) {
    case DataOutcome::kBareNewline:
      handler_.OnLimitHit("bare_newline");
      final_reply = replies::BareNewlineInData();
      break;
    case DataOutcome::kNulCharacter:
      handler_.OnLimitHit("nul_character");
      final_reply = replies::NulInData();
      break;
    case DataOutcome::kUnauthPipelining:  // answered above
      break;
    case DataOutcome::kTooBig:
      handler_.OnLimitHit("message_size");
      final_reply = replies::MessageTooBig();
      break;
    case DataOutcome::kHeaderTooBig:
      handler_.OnLimitHit("header_size");
      final_reply = replies::HeaderTooBig();
      break;
    case DataOutcome::kHandlerFailed:
      if (!final_reply.transient()) final_reply = replies::LocalError();  // never a 2xx/5xx by accident
      break;
    case DataOutcome::kComplete:
      if (final_reply.empty()) final_reply = replies::LocalError();
      break;
  }
  RefusalNote note;
  switch (outcome) {
    case DataOutcome::kBareNewline: note.check = "bare_newline"; break;
    case DataOutcome::kNulCharacter: note.check = "nul_character"; break;
    case DataOutcome::kUnauthPipelining: break;  // ended above
    case DataOutcome::kTooBig: note.check = "message_size"; break;
    case DataOutcome::kHeaderTooBig: note.check = "header_size"; break;
    case DataOutcome::kHandlerFailed:
    case DataOutcome::kComplete:
      note = std::move(handler_note);
      break;
  }
  LogTransactionEnd(end_client, "END-OF-MESSAGE", final_reply, note);
  have_mail_ = false;
  rcpts_ = 0;
  overshoot_ = 0;
  rcpt_addresses_.clear();
  facts_.message_id.clear();
  if (final_reply.positive()) ++facts_.transactions;
  Respond(final_reply);
  co_return true;
}

asio::awaitable<bool> Session::DoStartTls(const Command& c) {
  if (s_.tls == nullptr) {
    Refuse(replies::CommandNotImplemented(), "protocol");
    co_return true;
  }
  if (facts_.tls) {
    Refuse(replies::AlreadyTls(), "protocol");
    co_return true;
  }
  if (!c.argument.empty()) {
    Refuse(replies::SyntaxError("STARTTLS"), "syntax");
    co_return true;
  }
  // CVE-2011-0411: anything pipelined after STARTTLS was sent in the clear and must not be
  // executed inside the TLS session.
  in_.clear();
  Respond(replies::ReadyToStartTls());
  if (!co_await Flush()) co_return false;
  std::error_code ec = co_await stream_.StartTlsServer(*s_.tls, s_.command_timeout);
  if (ec) {
    handler_.OnTlsFailed();  // the handler counts failed handshakes (the session ends here)
    observe::Info("tls_handshake_failed").Kv("session", facts_.session_id).Kv("client", facts_.client_address).Kv("error", ec.message());
    co_return false;
  }
  co_await ResetTransaction();
  facts_.tls = true;
  facts_.tls_version = stream_.tls_version();
  facts_.tls_cipher = stream_.tls_cipher();
  facts_.tls_client_verified = stream_.peer_certificate_verified();
  facts_.tls_client_cn = stream_.peer_certificate_cn();
  facts_.helo.clear();  // RFC 3207 §4.2: the client must EHLO again
  facts_.esmtp = false;
  handler_.OnTlsStarted();
  co_return true;
}

asio::awaitable<void> Session::DoXforward(const Command& c) {
  if (!XforwardAllowed()) {
    Refuse(replies::XforwardNotAuthorized(), "xforward_hosts");
    co_return;
  }
  if (have_mail_) {
    Refuse(replies::XforwardInTransaction(), "protocol");
    co_return;
  }
  XforwardAttrs attrs;
  absl::Status st = ParseXforward(c.argument, attrs);
  if (!st.ok()) {
    Refuse(replies::XforwardBadSyntax(std::string(st.message())), "syntax");
    co_return;
  }
  Reply r = co_await handler_.OnXforward(attrs);
  RefusalNote note = handler_.TakeRefusalNote();
  RespondForHandler(r.empty() ? replies::Ok() : r, note);
}

asio::awaitable<void> Session::Run() {
  control_->Attach(&stream_, &handler_);
  if (s_.send_greeting) end_ = !co_await Greet();
  std::string line;
  while (!end_) {
    if (control_->kill_requested()) {
      Respond(control_->shutdown_requested() ? replies::ShuttingDown(s_.hostname) : replies::Killed(s_.hostname));
      co_await Flush();
      break;
    }
    if (control_->drain_requested() && !have_mail_) {
      Respond(replies::ShuttingDown(s_.hostname));
      co_await Flush();
      break;
    }
    if (PastDeadline()) {
      handler_.OnLimitHit("session_deadline");
      Respond(replies::SessionDeadline(s_.hostname));
      co_await Flush();
      break;
    }
    ReadResult rr = co_await ReadLine(line);
    if (rr == ReadResult::kInterrupted) continue;  // the loop head says why
    if (rr == ReadResult::kClosed) break;
    if (PastDeadline()) continue;  // a command arriving after the deadline is not run
    if (rr == ReadResult::kLine || rr == ReadResult::kTooLong) handler_.OnCommand();
    if (rr == ReadResult::kTimeout) {
      handler_.OnLimitHit("timeout");
      Respond(replies::Timeout(s_.hostname));
      co_await Flush();
      observe::Info("timeout").Kv("session", facts_.session_id).Kv("client", facts_.client_address);
      break;
    }
    command_ = "UNKNOWN";
    if (rr == ReadResult::kTooLong) {
      handler_.OnLimitHit("line_length");
      Refuse(replies::LineTooLong(), "line_length");
    } else {
      auto cmd = ParseCommandLine(line);
      if (!cmd.ok()) {
        handler_.OnLimitHit("bare_newline");
        Refuse(replies::BareNewlineInCommand(), "bare_newline");
      } else {
        const Command& c = *cmd;
        command_ = CommandName(c.verb);
        // smtpd_forbid_unauth_pipelining, checked before the command runs: without EHLO
        // nothing may be pipelined, after EHLO nothing may follow a group's last command.
        if (s_.forbid_unauth_pipelining && c.verb != Verb::kUnknown && c.verb != Verb::kQuit &&
            (!facts_.esmtp || EndsPipelinedGroup(c.verb)) && InputWaiting()) {
          co_await RefuseUnauthPipelining(c.verb_text);
          break;
        }
        switch (c.verb) {
          case Verb::kEhlo: co_await DoHelo(c, true); break;
          case Verb::kHelo: co_await DoHelo(c, false); break;
          case Verb::kMail: co_await DoMail(c); break;
          case Verb::kRcpt: co_await DoRcpt(c); break;
          case Verb::kData: end_ = !co_await DoData(c); break;
          case Verb::kRset:
            if (!c.argument.empty()) {
              Refuse(replies::SyntaxError("RSET"), "syntax");
              break;
            }
            co_await ResetTransaction();
            if (CountJunk()) ++errors_;
            Respond(replies::Ok());
            break;
          case Verb::kNoop:
            if (CountJunk()) ++errors_;
            Respond(replies::Ok());
            break;
          case Verb::kQuit:
            Respond(replies::Closing(s_.hostname));
            co_await Flush();
            end_ = true;
            break;
          case Verb::kVrfy:
            if (CountJunk()) ++errors_;
            if (s_.enable_vrfy) {
              Respond(replies::CannotVrfy());
            } else {
              Refuse(replies::VrfyDisabled(), "protocol");
            }
            break;
          case Verb::kHelp: Respond(replies::Help()); break;
          case Verb::kStarttls: end_ = !co_await DoStartTls(c); break;
          case Verb::kXforward: co_await DoXforward(c); break;
          case Verb::kExpn:
          case Verb::kAuth:
          case Verb::kEtrn:
          case Verb::kBdat:
          case Verb::kLhlo:
            Refuse(replies::CommandNotImplemented(), "protocol");
            break;
          case Verb::kUnknown: Refuse(replies::UnknownCommand(), "protocol"); break;
        }
      }
    }
    if (end_) break;
    if (last_code_ >= 400 && !co_await ErrorSleepAndCheck()) break;
    last_code_ = 0;
    if (!co_await FlushIfNoPipelinedInput()) break;
  }
  co_await ResetTransaction();
  control_->Detach();
  co_await handler_.OnClose();
}

}  // namespace

asio::awaitable<void> RunServerSession(SmtpStream& stream, ServerHandler& handler, SessionFacts& facts,
                                       const ServerSettings& settings,
                                       std::shared_ptr<SessionControl> control) {
  Session session(stream, handler, facts, settings, std::move(control));
  co_await session.Run();
  co_await stream.Shutdown(std::chrono::seconds(5));
}

}  // namespace sluice::smtp
