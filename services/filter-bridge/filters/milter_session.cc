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

MilterSession::MilterSession(const MilterFilter::Options& options, const FilterContext& ctx,
                             asio::any_io_executor executor)
    : options_(options), ctx_(ctx), conn_(executor) {
  for (uint32_t stage = 0; stage < macro_names_.size(); ++stage) {
    macro_names_[stage] = DefaultMacroNames(stage);
  }
}

MilterSession::TimePoint MilterSession::DeadlineIn(std::chrono::seconds timeout) const {
  return std::min(ctx_.deadline, Clock::now() + timeout);
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
                                                        const sluice::v1::Recipient* recipient) {
  MacroSource source{ctx_.session, ctx_.envelope, ctx_.hostname, recipient};
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

std::optional<FilterOutcome> MilterSession::Judge(const EventReply& reply, std::string_view stage) {
  const bool connection_level = stage == "connect" || stage == "helo";
  FilterDecision d = decision_;
  switch (reply.reply) {
    case Reply::kContinue:
    case Reply::kSkip:
      return std::nullopt;
    case Reply::kAccept:
      d.verdict = Verdict::kAccept;
      d.detail = "accept at " + std::string(stage);
      return d;
    case Reply::kDiscard:
      if (connection_level) return std::nullopt;  // not allowed there (milter API), ignored
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
  return d;
}

asio::awaitable<void> MilterSession::Quit() {
  (void)co_await conn_.Send(milter::EncodeCommand(Simple(milter::kCmdQuit)),
                            DeadlineIn(options_.command_timeout));
  conn_.Close();
}

asio::awaitable<FilterOutcome> MilterSession::Run() {
  if (absl::Status s = co_await conn_.Connect(options_.address, DeadlineIn(options_.connect_timeout)); !s.ok()) {
    co_return s;
  }
  if (absl::Status s = co_await Negotiate(); !s.ok()) co_return s;

  const sluice::v1::SessionMetadata& m = ctx_.session;
  const auto command_timeout = options_.command_timeout;
  // Runs one event with its macros; returns a final outcome or nullopt (go on).
  auto step = [&](const Command& command, uint32_t stage, const sluice::v1::Recipient* rcpt,
                  uint32_t no_flag, uint32_t no_reply_flag, std::chrono::seconds timeout,
                  std::string_view name) -> asio::awaitable<std::optional<FilterOutcome>> {
    if (absl::Status s = co_await SendMacros(command.code, stage, rcpt); !s.ok()) co_return FilterOutcome(s);
    auto reply = co_await Event(command, no_flag, no_reply_flag, timeout);
    if (!reply.ok()) co_return FilterOutcome(reply.status());
    co_return Judge(*reply, name);
  };

  // Connect: Postfix writes an unknown client name as [address].
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
  std::optional<FilterOutcome> done = co_await step(connect, milter::kStageConnect, nullptr,
      milter::kProtoNoConnect, milter::kProtoNoReplyConnect, command_timeout, "connect");
  if (!done && !m.helo().empty()) {
    Command helo = Simple(milter::kCmdHelo);
    helo.args = {m.helo()};
    done = co_await step(helo, milter::kStageHelo, nullptr, milter::kProtoNoHelo,
                         milter::kProtoNoReplyHelo, command_timeout, "helo");
  }
  if (!done) {
    Command mail = Simple(milter::kCmdMail);
    mail.args.push_back("<" + ctx_.envelope.mail_from() + ">");
    for (const auto& p : ctx_.envelope.mail_parameters()) mail.args.push_back(WireParameter(p));
    done = co_await step(mail, milter::kStageMail, nullptr, milter::kProtoNoMail,
                         milter::kProtoNoReplyMail, command_timeout, "mail");
  }
  for (int i = 0; !done && i < ctx_.envelope.recipients_size(); ++i) {
    const sluice::v1::Recipient& r = ctx_.envelope.recipients(i);
    Command rcpt = Simple(milter::kCmdRcpt);
    rcpt.args.push_back("<" + r.address() + ">");
    for (const auto& p : r.parameters()) rcpt.args.push_back(WireParameter(p));
    done = co_await step(rcpt, milter::kStageRcpt, &r, milter::kProtoNoRcpt,
                         milter::kProtoNoReplyRcpt, command_timeout, "rcpt");
  }
  if (!done && version_ >= 4) {
    done = co_await step(Simple(milter::kCmdData), milter::kStageData, nullptr, milter::kProtoNoData,
                         milter::kProtoNoReplyData, command_timeout, "data");
  }
  if (done) {
    co_await Quit();
    co_return std::move(*done);
  }
  FilterOutcome outcome = co_await EndOfMessage();
  co_await Quit();
  co_return outcome;
}

asio::awaitable<FilterOutcome> MilterSession::EndOfMessage() {
  const auto timeout = options_.content_timeout;
  const bool leading_space = (protocol_ & milter::kProtoHeaderLeadingSpace) != 0;

  if ((protocol_ & milter::kProtoNoHeaders) == 0) {
    if (absl::Status s = co_await SendMacros(milter::kCmdHeader, milter::kStageEoh, nullptr); !s.ok()) {
      co_return s;
    }
    for (const HeaderField& f : ctx_.Headers()) {
      Command h = Simple(milter::kCmdHeader);
      h.name = std::string(f.name());
      h.value = MilterHeaderValue(f.raw_value(), leading_space);
      auto reply = co_await Event(h, milter::kProtoNoHeaders, milter::kProtoNoReplyHeader, timeout);
      if (!reply.ok()) co_return reply.status();
      if (auto done = Judge(*reply, "header")) co_return std::move(*done);
    }
  }
  if (absl::Status s = co_await SendMacros(milter::kCmdEoh, milter::kStageEoh, nullptr); !s.ok()) co_return s;
  {
    auto reply = co_await Event(Simple(milter::kCmdEoh), milter::kProtoNoEoh, milter::kProtoNoReplyEoh, timeout);
    if (!reply.ok()) co_return reply.status();
    if (auto done = Judge(*reply, "eoh")) co_return std::move(*done);
  }
  if ((protocol_ & milter::kProtoNoBody) == 0) {
    if (absl::Status s = co_await SendMacros(milter::kCmdBody, milter::kStageEom, nullptr); !s.ok()) {
      co_return s;
    }
    const MessageSpool& body = ctx_.BodySpool();
    SpoolReader reader(body, ctx_.BodyBegin(), body.size());
    Command chunk = Simple(milter::kCmdBody);
    while (reader.Next(milter::kMaxBodyChunk, &chunk.body)) {
      auto reply = co_await Event(chunk, milter::kProtoNoBody, milter::kProtoNoReplyBody, timeout);
      if (!reply.ok()) co_return reply.status();
      if (reply->reply == Reply::kSkip) break;  // the milter has seen enough of the body
      if (auto done = Judge(*reply, "body")) co_return std::move(*done);
    }
    if (!reader.status().ok()) co_return reader.status();
    skip_event_ = 0;
  }

  // End of message: modifications, then the final reply.
  if (absl::Status s = co_await SendMacros(milter::kCmdEom, milter::kStageEom, nullptr); !s.ok()) co_return s;
  if (absl::Status s = co_await conn_.Send(milter::EncodeCommand(Simple(milter::kCmdEom)), DeadlineIn(timeout));
      !s.ok()) {
    co_return s;
  }
  MilterEditCollector edits(actions_, leading_space, ctx_.spool_options);
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
    co_return std::move(*Judge(reply, "eom"));
  }
}

}  // namespace sluice::filter_bridge
