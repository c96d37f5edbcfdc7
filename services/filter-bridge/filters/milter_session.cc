// services/filter-bridge/filters/milter_session.cc -- see milter_session.h.
//
// Event order and reply handling follow Postfix's milter8.c (read for the facts).
#include "services/filter-bridge/filters/milter_session.h"

#include <algorithm>

#include "lib/smtp/xtext.h"
#include "services/filter-bridge/filters/filter_replies.h"
#include "services/filter-bridge/filters/milter_edits.h"
#include "services/filter-bridge/filters/milter_macros.h"

namespace sluice::filter_bridge {
namespace {

using Command = milter::Command;

Command Simple(char code) {
  Command c;
  c.code = code;
  return c;
}

// An ESMTP parameter as it was on the wire: xtext for the extensions that define it.
std::string WireParameter(const sluice::v1::EsmtpParameter& p) {
  if (p.value().empty()) return p.keyword();
  const std::string& k = p.keyword();
  const bool xtext = k == "ENVID" || k == "ORCPT" || k == "AUTH";
  return k + "=" + (xtext ? smtp::XtextEncode(p.value()) : p.value());
}

// A header value as Sendmail sends it: without the one space after the colon (unless the
// milter wants leading spaces), folds as LF-separated lines.
std::string MilterHeaderValue(std::string_view raw, bool leading_space) {
  if (!leading_space && !raw.empty() && raw[0] == ' ') raw.remove_prefix(1);
  std::string out;
  out.reserve(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] == '\r' && i + 1 < raw.size() && raw[i + 1] == '\n') continue;
    out.push_back(raw[i]);
  }
  return out;
}

}  // namespace

MilterSession::MilterSession(const MilterFilter::Options& options, asio::any_io_executor executor)
    : options_(options), conn_(std::move(executor)) {
  for (uint32_t stage = 0; stage < macro_names_.size(); ++stage) {
    macro_names_[stage] = DefaultMacroNames(stage);
  }
}

MilterSession::TimePoint MilterSession::DeadlineIn(std::chrono::seconds timeout) const {
  return std::min(deadline_, Clock::now() + timeout);
}

FilterOutcome MilterSession::Failed(absl::Status status) {
  conn_.Close();
  state_ = State::kClosed;
  return status;
}

asio::awaitable<absl::Status> MilterSession::Open() {
  if (absl::Status s = co_await conn_.Connect(options_.address, DeadlineIn(options_.connect_timeout)); !s.ok()) {
    co_return s;
  }
  co_return co_await Negotiate();
}

asio::awaitable<absl::Status> MilterSession::Negotiate() {
  Command optneg = Simple(milter::kCmdOptneg);
  optneg.optneg.version = milter::kProtocolVersion;
  optneg.optneg.actions = milter::kActAll;
  optneg.optneg.protocol = milter::kOfferedProtocol;
  if (absl::Status s = co_await conn_.Send(milter::EncodeCommand(optneg), DeadlineIn(options_.command_timeout));
      !s.ok()) {
    co_return s;
  }
  auto r = co_await conn_.Receive(DeadlineIn(options_.command_timeout));
  if (!r.ok()) co_return r.status();
  if (r->code != milter::kRespOptneg) {
    co_return absl::DataLossError(std::string("milter answered option negotiation with '") + r->code + "'");
  }
  const milter::Optneg& o = r->optneg;
  if (o.version < 2 || o.version > milter::kProtocolVersion) {
    co_return absl::FailedPreconditionError("milter protocol version " + std::to_string(o.version) +
                                            " not supported");
  }
  if ((o.actions & ~milter::kActAll) != 0) {
    co_return absl::FailedPreconditionError("milter requests unknown actions");
  }
  version_ = o.version;
  actions_ = o.actions;
  protocol_ = o.protocol & milter::kOfferedProtocol;
  for (const auto& [stage, names] : o.macro_lists) {
    if (stage < macro_names_.size()) macro_names_[stage] = ParseMacroList(names);
  }
  co_return absl::OkStatus();
}

asio::awaitable<absl::Status> MilterSession::SendMacros(char for_command, uint32_t stage,
                                                        const MacroSource& source) {
  Command c = Simple(milter::kCmdMacro);
  c.macro_for = for_command;
  c.macros = MacroValues(macro_names_[stage], source);
  if (c.macros.empty()) co_return absl::OkStatus();
  co_return co_await conn_.Send(milter::EncodeCommand(c), DeadlineIn(options_.command_timeout));
}

asio::awaitable<absl::StatusOr<MilterSession::EventReply>> MilterSession::Event(
    const Command& command, uint32_t no_flag, uint32_t no_reply_flag, std::chrono::seconds timeout) {
  if (skip_event_ != 0) {
    if (skip_event_ == command.code) co_return EventReply{};
    skip_event_ = 0;
  }
  if (no_flag != 0 && (protocol_ & no_flag) != 0) co_return EventReply{};
  if (absl::Status s = co_await conn_.Send(milter::EncodeCommand(command), DeadlineIn(timeout)); !s.ok()) {
    co_return s;
  }
  if (no_reply_flag != 0 && (protocol_ & no_reply_flag) != 0) co_return EventReply{};
  co_return co_await ReadReply(command.code, timeout);
}

asio::awaitable<absl::StatusOr<MilterSession::EventReply>> MilterSession::ReadReply(
    char event, std::chrono::seconds timeout) {
  for (;;) {
    // Every reply, SMFIR_PROGRESS included, restarts the timeout.
    auto r = co_await conn_.Receive(DeadlineIn(timeout));
    if (!r.ok()) co_return r.status();
    switch (r->code) {
      case milter::kRespProgress:
        continue;
      case milter::kRespContinue:
        co_return EventReply{Reply::kContinue, {}};
      case milter::kRespAccept:
        co_return EventReply{Reply::kAccept, {}};
      case milter::kRespReject:
        co_return EventReply{Reply::kReject, {}};
      case milter::kRespTempfail:
        co_return EventReply{Reply::kTempfail, {}};
      case milter::kRespDiscard:
        co_return EventReply{Reply::kDiscard, {}};
      case milter::kRespShutdown:
        co_return EventReply{Reply::kShutdown, {}};
      case milter::kRespSkip:
        skip_event_ = event;
        co_return EventReply{Reply::kSkip, {}};
      case milter::kRespReplyCode: {
        auto reply = milter::ParseReplyCode(r->text);
        if (!reply.ok()) co_return reply.status();
        co_return EventReply{Reply::kReplyCode, *std::move(reply)};
      }
      case milter::kRespQuarantine: {
        // Allowed at any stage (Sendmail 8.13); no state change, the reply follows.
        if ((actions_ & milter::kActQuarantine) == 0) {
          co_return absl::FailedPreconditionError("milter quarantined without negotiating it");
        }
        decision_.hold = true;
        if (decision_.hold_reason.empty()) decision_.hold_reason = r->text.empty() ? "milter quarantine" : r->text;
        continue;
      }
      default:
        co_return absl::DataLossError(std::string("unexpected milter response '") + r->code +
                                      "' to event '" + event + "'");
    }
  }
}

FilterDecision MilterSession::Judge(const EventReply& reply, std::string_view stage) {
  const bool connection_level = stage == "connect" || stage == "helo";
  FilterDecision d = decision_;
  switch (reply.reply) {
    case Reply::kContinue:
    case Reply::kSkip:
      d.verdict = Verdict::kContinue;
      return d;
    case Reply::kAccept:
      // At connect or HELO: every command of the connection (here: the transaction); later:
      // this message. Either way the milter hears nothing more of it.
      state_ = State::kAccepted;
      d.verdict = Verdict::kAccept;
      d.detail = "accept at " + std::string(stage);
      return d;
    case Reply::kDiscard:
      if (connection_level) {  // not allowed there (milter API): ignored, as Postfix does
        d.verdict = Verdict::kContinue;
        return d;
      }
      state_ = State::kAccepted;
      d.verdict = Verdict::kDiscard;
      d.detail = "discard at " + std::string(stage);
      return d;
    case Reply::kReject:
      d.verdict = Verdict::kReject;
      d.reply = smtp::replies::MilterReject();
      break;
    case Reply::kTempfail:
    case Reply::kShutdown:
      d.verdict = Verdict::kTempfail;
      d.reply = smtp::replies::MilterTempfail();
      break;
    case Reply::kReplyCode:
      d.verdict = reply.code.permanent() ? Verdict::kReject : Verdict::kTempfail;
      d.reply = reply.code;
      break;
  }
  d.detail = std::string(VerdictName(d.verdict)) + " at " + std::string(stage) + ": " + d.reply.ToString();
  if (connection_level) {
    // Postfix: a refusal at connect or HELO answers every later command.
    state_ = State::kRefusedAll;
    refused_all_ = d;
  }
  return d;
}

std::optional<FilterOutcome> MilterSession::NotListening() const {
  switch (state_) {
    case State::kEnvelope:
      return std::nullopt;
    case State::kRefusedAll:
      return FilterOutcome(refused_all_);
    case State::kAccepted: {
      FilterDecision d = decision_;
      d.verdict = Verdict::kAccept;
      d.detail = "accepted before";
      return FilterOutcome(std::move(d));
    }
    case State::kNew:
    case State::kClosed:
      break;
  }
  return FilterOutcome(absl::FailedPreconditionError("milter conversation not open"));
}

asio::awaitable<FilterOutcome> MilterSession::EnvelopeEvent(const Command& command, uint32_t stage,
                                                            const MacroSource& source, uint32_t no_flag,
                                                            uint32_t no_reply_flag, std::string_view name) {
  if (absl::Status s = co_await SendMacros(command.code, stage, source); !s.ok()) co_return Failed(s);
  auto reply = co_await Event(command, no_flag, no_reply_flag, options_.command_timeout);
  if (!reply.ok()) co_return Failed(reply.status());
  co_return Judge(*reply, name);
}

asio::awaitable<FilterOutcome> MilterSession::Mail(const EnvelopeContext& ctx) {
  deadline_ = ctx.deadline;
  if (state_ != State::kNew) co_return absl::FailedPreconditionError("milter: MAIL twice");
  if (absl::Status s = co_await Open(); !s.ok()) co_return Failed(s);
  state_ = State::kEnvelope;
  const sluice::v1::SessionMetadata& m = ctx.session;
  const MacroSource source{m, ctx.envelope, ctx.hostname, nullptr, options_.daemon_name};

  // Connect: the transaction's client. Postfix writes an unknown client name as [address].
  Command connect = Simple(milter::kCmdConnect);
  const std::string& addr = m.client_address();
  connect.hostname = (!m.client_name().empty() && m.client_name() != "unknown") ? m.client_name()
                     : addr.empty() ? "unknown" : "[" + addr + "]";
  if (addr.empty()) {
    connect.family = 'U';
  } else {
    connect.family = addr.find(':') != std::string::npos ? '6' : '4';
    connect.port = static_cast<uint16_t>(m.client_port());
    connect.address = addr;
  }
  FilterOutcome d = co_await EnvelopeEvent(connect, milter::kStageConnect, source, milter::kProtoNoConnect,
                                           milter::kProtoNoReplyConnect, "connect");
  if (!d.ok() || d->verdict != Verdict::kContinue) co_return d;
  if (!m.helo().empty()) {
    Command helo = Simple(milter::kCmdHelo);
    helo.args = {m.helo()};
    d = co_await EnvelopeEvent(helo, milter::kStageHelo, source, milter::kProtoNoHelo, milter::kProtoNoReplyHelo,
                               "helo");
    if (!d.ok() || d->verdict != Verdict::kContinue) co_return d;
  }
  Command mail = Simple(milter::kCmdMail);
  mail.args.push_back("<" + ctx.envelope.mail_from() + ">");
  for (const auto& p : ctx.envelope.mail_parameters()) mail.args.push_back(WireParameter(p));
  co_return co_await EnvelopeEvent(mail, milter::kStageMail, source, milter::kProtoNoMail,
                                   milter::kProtoNoReplyMail, "mail");
}

asio::awaitable<FilterOutcome> MilterSession::Rcpt(const EnvelopeContext& ctx, const sluice::v1::Recipient& rcpt) {
  deadline_ = ctx.deadline;
  if (auto done = NotListening()) co_return std::move(*done);
  const MacroSource source{ctx.session, ctx.envelope, ctx.hostname, &rcpt, options_.daemon_name};
  Command command = Simple(milter::kCmdRcpt);
  command.args.push_back("<" + rcpt.address() + ">");
  for (const auto& p : rcpt.parameters()) command.args.push_back(WireParameter(p));
  co_return co_await EnvelopeEvent(command, milter::kStageRcpt, source, milter::kProtoNoRcpt,
                                   milter::kProtoNoReplyRcpt, "rcpt");
}

asio::awaitable<FilterOutcome> MilterSession::Data(const EnvelopeContext& ctx) {
  deadline_ = ctx.deadline;
  if (auto done = NotListening()) co_return std::move(*done);
  if (version_ < 4) {  // SMFIC_DATA came with protocol version 4
    FilterDecision go_on;
    co_return go_on;
  }
  const MacroSource source{ctx.session, ctx.envelope, ctx.hostname, nullptr, options_.daemon_name};
  co_return co_await EnvelopeEvent(Simple(milter::kCmdData), milter::kStageData, source, milter::kProtoNoData,
                                   milter::kProtoNoReplyData, "data");
}

asio::awaitable<FilterOutcome> MilterSession::Content(const FilterContext& ctx) {
  deadline_ = ctx.deadline;
  if (auto done = NotListening()) co_return std::move(*done);
  FilterOutcome outcome = co_await EndOfMessage(ctx);
  if (!outcome.ok()) co_return Failed(outcome.status());
  co_return outcome;
}

asio::awaitable<void> MilterSession::Quit() {
  if (state_ != State::kNew && state_ != State::kClosed) {
    deadline_ = Clock::now() + options_.command_timeout;
    (void)co_await conn_.Send(milter::EncodeCommand(Simple(milter::kCmdQuit)), DeadlineIn(options_.command_timeout));
  }
  conn_.Close();
  state_ = State::kClosed;
}

asio::awaitable<FilterOutcome> MilterSession::EndOfMessage(const FilterContext& ctx) {
  const auto timeout = options_.content_timeout;
  const bool leading_space = (protocol_ & milter::kProtoHeaderLeadingSpace) != 0;

  const MacroSource source{ctx.session, ctx.envelope, ctx.hostname, nullptr, options_.daemon_name};
  if ((protocol_ & milter::kProtoNoHeaders) == 0) {
    if (absl::Status s = co_await SendMacros(milter::kCmdHeader, milter::kStageEoh, source); !s.ok()) {
      co_return s;
    }
    for (const HeaderField& f : ctx.Headers()) {
      Command h = Simple(milter::kCmdHeader);
      h.name = std::string(f.name());
      h.value = MilterHeaderValue(f.raw_value(), leading_space);
      auto reply = co_await Event(h, milter::kProtoNoHeaders, milter::kProtoNoReplyHeader, timeout);
      if (!reply.ok()) co_return reply.status();
      FilterDecision d = Judge(*reply, "header");
      if (d.verdict != Verdict::kContinue) co_return d;
    }
  }
  if (absl::Status s = co_await SendMacros(milter::kCmdEoh, milter::kStageEoh, source); !s.ok()) co_return s;
  {
    auto reply = co_await Event(Simple(milter::kCmdEoh), milter::kProtoNoEoh, milter::kProtoNoReplyEoh, timeout);
    if (!reply.ok()) co_return reply.status();
    FilterDecision d = Judge(*reply, "eoh");
    if (d.verdict != Verdict::kContinue) co_return d;
  }
  if ((protocol_ & milter::kProtoNoBody) == 0) {
    if (absl::Status s = co_await SendMacros(milter::kCmdBody, milter::kStageEom, source); !s.ok()) {
      co_return s;
    }
    const MessageSpool& body = ctx.BodySpool();
    SpoolReader reader(body, ctx.BodyBegin(), body.size());
    Command chunk = Simple(milter::kCmdBody);
    while (reader.Next(milter::kMaxBodyChunk, &chunk.body)) {
      auto reply = co_await Event(chunk, milter::kProtoNoBody, milter::kProtoNoReplyBody, timeout);
      if (!reply.ok()) co_return reply.status();
      if (reply->reply == Reply::kSkip) break;  // the milter has seen enough of the body
      FilterDecision d = Judge(*reply, "body");
      if (d.verdict != Verdict::kContinue) co_return d;
    }
    if (!reader.status().ok()) co_return reader.status();
    skip_event_ = 0;
  }

  // End of message: modifications, then the final reply.
  if (absl::Status s = co_await SendMacros(milter::kCmdEom, milter::kStageEom, source); !s.ok()) co_return s;
  if (absl::Status s = co_await conn_.Send(milter::EncodeCommand(Simple(milter::kCmdEom)), DeadlineIn(timeout));
      !s.ok()) {
    co_return s;
  }
  MilterEditCollector edits(actions_, leading_space, ctx.spool_options);
  FilterDecision d = decision_;
  for (;;) {
    auto r = co_await conn_.Receive(DeadlineIn(timeout));
    if (!r.ok()) co_return r.status();
    if (r->code == milter::kRespProgress) continue;
    if (MilterEditCollector::IsModification(r->code)) {
      if (absl::Status s = edits.Apply(*r, &d); !s.ok()) co_return s;
      continue;
    }
    if (absl::Status s = edits.Finish(&d); !s.ok()) co_return s;
    EventReply reply;
    switch (r->code) {
      case milter::kRespContinue:
      case milter::kRespAccept:
      case milter::kRespSkip:
        d.verdict = Verdict::kContinue;
        d.detail = "eom: " + std::string(r->code == milter::kRespAccept ? "accept" : "continue");
        if (edits.edits() > 0) d.detail += ", " + std::to_string(edits.edits()) + " modification(s)";
        co_return d;
      case milter::kRespReject: reply.reply = Reply::kReject; break;
      case milter::kRespTempfail: reply.reply = Reply::kTempfail; break;
      case milter::kRespShutdown: reply.reply = Reply::kShutdown; break;
      case milter::kRespDiscard: reply.reply = Reply::kDiscard; break;
      case milter::kRespReplyCode: {
        auto code = milter::ParseReplyCode(r->text);
        if (!code.ok()) co_return code.status();
        reply.reply = Reply::kReplyCode;
        reply.code = *std::move(code);
        break;
      }
      default:
        co_return absl::DataLossError(std::string("unexpected milter response '") + r->code +
                                      "' at end of message");
    }
    decision_ = d;  // keep a quarantine seen at end of message
    co_return Judge(reply, "eom");
  }
}

}  // namespace sluice::filter_bridge
