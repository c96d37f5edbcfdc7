// services/filter-bridge/filters/filter.h
//
// The extension point of the filter chain, Envoy style: a Filter judges one message, a
// FilterFactory makes filters of one kind from their FilterConfig, and factories are
// registered by the name of their FilterConfig `kind` field ("rules", "milter", "grpc").
// The chain knows only this header; builtin_filters.cc registers the concrete kinds.
//
// A filter sees the message as the earlier filters left it (FilterContext: the current
// envelope, the spool and the edits so far, the deadline) and answers with a FilterDecision
// (verdict, hold, edits) or a failure Status, which the chain maps through the filter's
// on_failure policy (tempfail unless configured otherwise).
//
// A filter may also judge the envelope as it happens (a milter: connect, HELO and MAIL at
// MAIL, each RCPT, DATA): BeginTransaction gives one FilterTransaction per mail transaction,
// which answers each event and then the content on the same conversation (Content instead
// of Run). Envelope decisions: continue; accept (done with this message, skipped from now
// on); reject/tempfail (that event is refused: at RCPT, that recipient only); discard (the
// message is discarded at its end).
//
// Never: lets a filter edit the spool or the context in place (it returns edits); decides a
// failure policy inside a filter (the chain does, the same way for every kind).
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "asio/awaitable.hpp"
#include "lib/smtp/reply.h"
#include "services/filter-bridge/message/message_edits.h"
#include "services/filter-bridge/message/message_spool.h"
#include "sluice/v1/config.pb.h"
#include "sluice/v1/session.pb.h"

namespace sluice::filter_bridge {

using Clock = std::chrono::steady_clock;

// What one filter sees. Everything is read-only and stays valid for the whole Run.
struct FilterContext {
  // Client facts: complete() false means only what XFORWARD said (no TLS/SASL facts).
  const sluice::v1::SessionMetadata& session;
  // The envelope as the earlier filters left it: mail_from, mail_parameters, recipients.
  const sluice::v1::Transaction& envelope;
  const MessageSpool& spool;
  const Edits& edits;          // header edits and body replacement of the earlier filters
  Clock::time_point deadline;  // the filter's own: min(chain deadline, now + its timeout)
  const SpoolOptions& spool_options;  // for a replacement body's spool
  std::string_view hostname;   // this stage's name (milter macro j, trace header)

  // The header as the earlier filters left it.
  std::vector<HeaderField> Headers() const { return EditedHeaders(spool, edits); }
  // The body source and its range: the replacement body, or the original's body.
  const MessageSpool& BodySpool() const { return edits.body ? *edits.body : spool; }
  uint64_t BodyBegin() const { return edits.body ? 0 : spool.body_offset(); }
  // The message size as it would be written now.
  uint64_t MessageSize() const { return EditedSize(spool, edits); }
};

enum class Verdict {
  kContinue,  // no objection; the next filter runs
  kAccept,    // this filter accepts (it is done); the next filter still runs
  kReject,    // 5xx to the sender; the chain stops
  kTempfail,  // 4xx to the sender; the chain stops
  kDiscard,   // 250 to the sender, nothing delivered; the chain stops
};
std::string_view VerdictName(Verdict v);  // "continue", "accept", "reject", ...
bool IsFinal(Verdict v);                  // reject, tempfail, discard

struct FilterDecision {
  Verdict verdict = Verdict::kContinue;
  smtp::Reply reply;                   // reject/tempfail; empty: the chain's default reply
  bool hold = false;                   // deliver into the hold queue (quarantine)
  std::string hold_reason;
  std::vector<HeaderEdit> header_edits;  // applied in order after the earlier filters' edits
  std::vector<sluice::v1::Recipient> add_recipients;
  std::vector<std::string> delete_recipients;  // addresses, compared ignoring case
  // A new envelope sender (MAIL FROM path, "" for <>) with its ESMTP parameters.
  std::optional<std::string> new_sender;
  std::vector<sluice::v1::EsmtpParameter> new_sender_parameters;
  std::shared_ptr<const MessageSpool> new_body;  // a finished body-only spool
  std::string detail;                  // for the log and the FilterResult (rule name, reason)
  // The rule that decided (rules filter: the one whose action ended the rules, else the
  // first hold): named in the transaction's log line, filters="name=verdict:rule".
  std::string rule;
};

// A failed filter (error, protocol violation, timeout: absl::StatusCode::kDeadlineExceeded)
// is a non-OK status.
using FilterOutcome = absl::StatusOr<FilterDecision>;

// What an envelope event shows a filter. Read-only, valid for the call.
struct EnvelopeContext {
  // The transaction's client (XFORWARD facts, or the owner's full record): with pooled
  // connections one session carries transactions of many clients.
  const sluice::v1::SessionMetadata& session;
  // mail_from and its parameters; the recipients accepted so far.
  const sluice::v1::Transaction& envelope;
  Clock::time_point deadline;  // the filter's own: min(the sender's wait, its timeout)
  std::string_view hostname;
};

// One mail transaction's conversation with a filter that judges the envelope as it happens.
// Calls come in protocol order from one coroutine: Mail, Rcpt per recipient, Data, Content,
// and Close last (also after a refusal, a failure or an abort).
class FilterTransaction {
 public:
  virtual ~FilterTransaction() = default;
  virtual asio::awaitable<FilterOutcome> Mail(const EnvelopeContext& ctx) = 0;
  virtual asio::awaitable<FilterOutcome> Rcpt(const EnvelopeContext& ctx, const sluice::v1::Recipient& rcpt) = 0;
  virtual asio::awaitable<FilterOutcome> Data(const EnvelopeContext& ctx) = 0;
  // The content at the end of DATA, as Filter::Run.
  virtual asio::awaitable<FilterOutcome> Content(const FilterContext& ctx) = 0;
  virtual asio::awaitable<void> Close() = 0;
};

class Filter {
 public:
  virtual ~Filter() = default;
  // Runs on the session's io thread; must not block it (I/O is asynchronous; CPU work is
  // bounded) and must honour ctx.deadline and cancellation of its pending operation.
  // May run concurrently for several sessions: per-message state lives in the coroutine.
  virtual asio::awaitable<FilterOutcome> Run(const FilterContext& ctx) = 0;
  // A filter that judges envelope events as they happen returns a conversation for one mail
  // transaction; nullptr (the default): it judges only the whole message, with Run.
  virtual std::unique_ptr<FilterTransaction> BeginTransaction() { return nullptr; }
};

// What a factory may use besides the filter's own config.
struct FilterFactoryContext {
  const sluice::v1::FilterBridgeConfig& bridge;  // the whole stage config
};

class FilterFactory {
 public:
  virtual ~FilterFactory() = default;
  // The FilterConfig `kind` field this factory serves: "rules", "milter", "grpc".
  virtual std::string_view kind() const = 0;
  // A filter for `config`, or INVALID_ARGUMENT naming what is wrong.
  virtual absl::StatusOr<std::unique_ptr<Filter>> Create(const sluice::v1::FilterConfig& config,
                                                         const FilterFactoryContext& context) = 0;
};

// The registry. Registering a kind twice keeps the first.
void RegisterFilterFactory(std::unique_ptr<FilterFactory> factory);
FilterFactory* FindFilterFactory(std::string_view kind);
// The kind of a FilterConfig: the name of its set `kind` field, "" when none is set.
std::string FilterKind(const sluice::v1::FilterConfig& config);

}  // namespace sluice::filter_bridge
