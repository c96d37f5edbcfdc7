// services/filter-bridge/filters/filter_chain.cc -- see filter_chain.h.
#include "services/filter-bridge/filters/filter_chain.h"

#include <unistd.h>

#include <algorithm>
#include <exception>
#include <set>
#include <utility>
#include <variant>

#include "lib/observe/log.h"
#include "services/filter-bridge/filters/bounded_call.h"
#include "services/filter-bridge/filters/builtin_filters.h"
#include "services/filter-bridge/filters/chain_transaction.h"
#include "services/filter-bridge/filters/filter_replies.h"
#include "services/filter-bridge/filters/trace_header.h"

namespace sluice::filter_bridge {
namespace {

bool IsValidFilterName(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.';
    if (!ok) return false;
  }
  return true;
}

std::string LocalHostname() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof(buf) - 1) != 0 || buf[0] == '\0') return "localhost";
  return buf;
}

std::string StripBrackets(std::string_view a) {
  if (a.size() >= 2 && a.front() == '<' && a.back() == '>') a = a.substr(1, a.size() - 2);
  return std::string(a);
}

// Applies a decision's envelope changes; true when anything changed.
bool ApplyEnvelope(const FilterDecision& d, sluice::v1::Transaction& env) {
  bool changed = false;
  for (const std::string& gone : d.delete_recipients) {
    const std::string address = StripBrackets(gone);
    auto* rcpts = env.mutable_recipients();
    for (int i = rcpts->size() - 1; i >= 0; --i) {
      if (EqualsIgnoreCase(rcpts->Get(i).address(), address)) {
        rcpts->DeleteSubrange(i, 1);
        changed = true;
      }
    }
  }
  for (const sluice::v1::Recipient& add : d.add_recipients) {
    sluice::v1::Recipient r = add;
    r.set_address(StripBrackets(r.address()));
    const bool present = std::any_of(env.recipients().begin(), env.recipients().end(),
                                     [&](const auto& x) { return EqualsIgnoreCase(x.address(), r.address()); });
    if (present || r.address().empty()) continue;
    *env.add_recipients() = std::move(r);
    changed = true;
  }
  if (d.new_sender.has_value()) {
    env.set_mail_from(StripBrackets(*d.new_sender));
    env.clear_mail_parameters();
    for (const auto& p : d.new_sender_parameters) *env.add_mail_parameters() = p;
    changed = true;
  }
  return changed;
}

// A new entry of result.results, with its rule slot beside it.
sluice::v1::FilterResult& AddResult(ChainResult& result) {
  result.rules.emplace_back();
  return *result.results.insert(result.results.end(), sluice::v1::FilterResult());
}

}  // namespace

std::string_view ActionName(ChainResult::Action action) {
  switch (action) {
    case ChainResult::Action::kDeliver: return "deliver";
    case ChainResult::Action::kReject: return "reject";
    case ChainResult::Action::kTempfail: return "tempfail";
    case ChainResult::Action::kDiscard: return "discard";
  }
  return "deliver";
}

absl::StatusOr<std::unique_ptr<FilterChain>> FilterChain::Create(
    const sluice::v1::FilterBridgeConfig& config, prometheus::Registry* registry) {
  RegisterBuiltinFilters();
  std::unique_ptr<FilterChain> chain(new FilterChain());
  chain->hostname_ = config.server().hostname().empty() ? LocalHostname() : config.server().hostname();
  chain->trace_header_ = config.trace_header();
  if (!chain->trace_header_.empty() && !IsValidFieldName(chain->trace_header_)) {
    return absl::InvalidArgumentError("trace_header: \"" + chain->trace_header_ +
                                      "\" is not a valid header field name");
  }
  if (!config.hold_mark_key_file().empty()) {
    auto key = smtp::HoldMarkKey::Load(config.hold_mark_key_file());
    if (!key.ok()) return key.status();
    chain->hold_key_ = *std::move(key);
  }
  chain->spool_options_.dir = config.spool_dir();
  if (config.limits().has_spool_memory_bytes()) {
    chain->spool_options_.memory_limit = config.limits().spool_memory_bytes();
  }
  if (config.limits().has_header_size_limit_bytes()) {
    chain->spool_options_.header_limits.max_bytes = std::max<size_t>(
        chain->spool_options_.header_limits.max_bytes, config.limits().header_size_limit_bytes());
  }
  FilterFactoryContext factory_context{config};
  std::set<std::string> names;
  std::vector<std::string> metric_names;
  for (int i = 0; i < config.filters_size(); ++i) {
    const sluice::v1::FilterConfig& fc = config.filters(i);
    const std::string kind = FilterKind(fc);
    std::string name = fc.name().empty() ? (kind.empty() ? "filter" : kind) + "-" + std::to_string(i + 1)
                                         : fc.name();
    const std::string where = "filters[" + std::to_string(i) + "] (" + name + ")";
    if (!IsValidFilterName(name)) {
      return absl::InvalidArgumentError(where + ": name must be 1-64 of [A-Za-z0-9._-]");
    }
    if (!names.insert(name).second) {
      return absl::InvalidArgumentError(where + ": duplicate filter name");
    }
    if (kind.empty()) return absl::InvalidArgumentError(where + ": no filter kind (rules, milter or grpc)");
    FilterFactory* factory = FindFilterFactory(kind);
    if (factory == nullptr) return absl::InvalidArgumentError(where + ": unknown filter kind " + kind);
    sluice::v1::FilterConfig named = fc;
    named.set_name(name);
    auto filter = factory->Create(named, factory_context);
    if (!filter.ok()) {
      return absl::InvalidArgumentError(where + ": " + std::string(filter.status().message()));
    }
    Entry e;
    e.name = name;
    e.filter = std::move(filter).value();
    e.timeout = std::chrono::seconds(fc.timeout_seconds());
    e.on_failure = fc.on_failure() == sluice::v1::FAILURE_POLICY_UNSPECIFIED
                       ? sluice::v1::FAILURE_POLICY_TEMPFAIL
                       : fc.on_failure();
    chain->entries_.push_back(std::move(e));
    metric_names.push_back(name);
  }
  if (registry != nullptr) {
    chain->metrics_ = std::make_unique<FilterChainMetrics>(*registry, metric_names);
  }
  return chain;
}

std::optional<std::string> UpstreamHoldMark(const MessageSpool& spool) {
  for (const HeaderField& f : spool.headers()) {
    if (f.Is("Received")) break;
    if (f.Is(kHoldHeader)) return f.UnfoldedValue();
  }
  return std::nullopt;
}

std::unique_ptr<ChainTransaction> FilterChain::BeginTransaction() const {
  std::vector<ChainTransaction::Member> members;
  for (size_t i = 0; i < entries_.size(); ++i) {
    std::unique_ptr<FilterTransaction> conversation = entries_[i].filter->BeginTransaction();
    if (conversation == nullptr) continue;
    ChainTransaction::Member m;
    m.entry = i;
    m.conversation = std::move(conversation);
    members.push_back(std::move(m));
  }
  if (members.empty()) return nullptr;
  return std::unique_ptr<ChainTransaction>(new ChainTransaction(*this, std::move(members)));
}

void FilterChain::RecordFailure(const Entry& entry, const absl::Status& status, std::string_view stage,
                                const std::string& session_id) const {
  const bool timeout = status.code() == absl::StatusCode::kDeadlineExceeded;
  if (metrics_ != nullptr) {
    metrics_->results.at({entry.name, "error"}).Increment();
    metrics_->failures.at({entry.name, timeout ? "timeout" : "error"}).Increment();
  }
  observe::Warn("filter_failure")
      .Kv("session", session_id)
      .Kv("filter", entry.name)
      .Kv("reason", timeout ? "timeout" : "error")
      .Kv("detail", std::string(status.message()))
      .Kv("policy", sluice::v1::FailurePolicy_Name(entry.on_failure))
      .Kv("step", stage);
}

void FilterChain::CountResult(const Entry& entry, std::string_view verdict) const {
  if (metrics_ != nullptr) metrics_->results.at({entry.name, std::string(verdict)}).Increment();
}

smtp::Reply FilterChain::FailureReply(sluice::v1::FailurePolicy policy) {
  return policy == sluice::v1::FAILURE_POLICY_REJECT ? smtp::replies::FilterFailureReject()
                                                     : smtp::replies::FilterFailureTempfail();
}

smtp::Reply FilterChain::DecisionReply(const FilterDecision& d) {
  const bool reject = d.verdict == Verdict::kReject;
  // A verdict reply of the wrong class is replaced: a reject is 5xx, a tempfail 4xx.
  const bool class_ok = reject ? d.reply.permanent() : d.reply.transient();
  if (class_ok) return d.reply;
  return reject ? smtp::replies::FilterReject() : smtp::replies::FilterTempfail();
}

asio::awaitable<ChainResult> FilterChain::Run(ChainInput input, ChainTransaction* transaction) const {
  ChainResult result;
  result.envelope = std::move(input.envelope);
  const sluice::v1::SessionMetadata& session = *input.session;
  const MessageSpool& spool = *input.spool;
  Edits& edits = result.edits;

  // Only a filter verdict may hold mail: drop a hold marker the sender wrote. A hold the
  // upstream stage asked for (its checks' HOLD) is this chain's hold from the start.
  for (const HeaderField& f : spool.headers()) {
    if (f.Is(kHoldHeader)) {
      edits.headers.push_back(HeaderEdit::RemoveAll(kHoldHeader));
      break;
    }
  }
  if (input.upstream_hold) {
    result.hold = true;
    result.hold_reason = *input.upstream_hold;
  }
  // What the envelope stage already decided: a hold, or a discard (then no filter runs).
  if (transaction != nullptr) {
    if (transaction->hold_) {
      if (!result.hold) {
        result.hold_reason = transaction->hold_reason_;
      } else if (result.hold_reason.find(transaction->hold_reason_) == std::string::npos) {
        result.hold_reason += "; " + transaction->hold_reason_;
      }
      result.hold = true;
    }
    if (transaction->discard_) {
      result.action = ChainResult::Action::kDiscard;
      sluice::v1::FilterResult& fr = AddResult(result);
      fr.set_filter(transaction->discard_filter_);
      fr.set_verdict("discard");
      fr.set_detail(transaction->discard_detail_);
    }
  }

  for (size_t i = 0; i < entries_.size() && result.action == ChainResult::Action::kDeliver; ++i) {
    const Entry& entry = entries_[i];
    ChainTransaction::Member* member = transaction != nullptr ? transaction->MemberFor(i) : nullptr;
    if (member != nullptr && member->state != ChainTransaction::Member::State::kListening) {
      // Done before the content: accepted (or failed with on_failure accept) -- skipped;
      // failed otherwise -- its reply stands (DATA was refused with it already).
      sluice::v1::FilterResult& fr = AddResult(result);
      fr.set_filter(entry.name);
      fr.set_detail(member->detail);
      if (member->state == ChainTransaction::Member::State::kDone) {
        fr.set_verdict(member->failed ? "error" : "accept");
        continue;
      }
      fr.set_verdict("error");
      result.reply = member->failure_reply;
      result.action = result.reply.permanent() ? ChainResult::Action::kReject : ChainResult::Action::kTempfail;
      break;
    }
    const Clock::time_point start = Clock::now();
    Clock::time_point deadline = input.deadline;
    if (entry.timeout.count() > 0) deadline = std::min(deadline, start + entry.timeout);

    FilterOutcome outcome = absl::DeadlineExceededError("no time left before the chain deadline");
    if (start < deadline) {
      FilterContext ctx{session, result.envelope, spool, edits, deadline, spool_options_, hostname_};
      if (member != nullptr) {
        outcome = co_await RunBounded([&] { return member->conversation->Content(ctx); }, deadline);
      } else {
        outcome = co_await RunBounded([&] { return entry.filter->Run(ctx); }, deadline);
      }
    }
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();

    sluice::v1::FilterResult& fr = AddResult(result);
    fr.set_filter(entry.name);
    fr.set_seconds(seconds);
    // Recipients this filter refused at RCPT (never relayed) are noted with its verdict.
    std::string refused;
    if (member != nullptr && member->refused_recipients > 0) {
      refused = std::to_string(member->refused_recipients) + " recipient(s) refused at rcpt; ";
    }

    // A decision whose edits are malformed is the filter's failure, not a verdict.
    if (outcome.ok()) {
      for (const HeaderEdit& e : outcome->header_edits) {
        if (absl::Status s = ValidateHeaderEdit(e); !s.ok()) {
          outcome = absl::InternalError("bad header edit: " + std::string(s.message()));
          break;
        }
      }
    }
    if (metrics_ != nullptr) metrics_->duration.at({entry.name}).Observe(seconds);

    if (!outcome.ok()) {
      const bool timeout = outcome.status().code() == absl::StatusCode::kDeadlineExceeded;
      RecordFailure(entry, outcome.status(), "content", session.session_id());
      fr.set_verdict("error");
      fr.set_detail(refused + (timeout ? "timeout: " : "error: ") + std::string(outcome.status().message()));
      if (entry.on_failure == sluice::v1::FAILURE_POLICY_ACCEPT) continue;
      result.action = entry.on_failure == sluice::v1::FAILURE_POLICY_REJECT ? ChainResult::Action::kReject
                                                                             : ChainResult::Action::kTempfail;
      result.reply = FailureReply(entry.on_failure);
      break;
    }

    FilterDecision& d = *outcome;
    std::string verdict(VerdictName(d.verdict));
    if (d.hold && !IsFinal(d.verdict)) verdict = "hold";
    CountResult(entry, verdict);
    fr.set_verdict(verdict);
    fr.set_detail(refused + d.detail);
    result.rules.back() = d.rule;

    if (d.verdict == Verdict::kReject || d.verdict == Verdict::kTempfail) {
      result.action = d.verdict == Verdict::kReject ? ChainResult::Action::kReject : ChainResult::Action::kTempfail;
      result.reply = DecisionReply(d);
      if (fr.detail().empty()) fr.set_detail(result.reply.ToString());
      break;
    }
    if (d.verdict == Verdict::kDiscard) {
      result.action = ChainResult::Action::kDiscard;
      break;
    }
    for (HeaderEdit& e : d.header_edits) edits.headers.push_back(std::move(e));
    if (d.new_body != nullptr) edits.body = std::move(d.new_body);
    if (ApplyEnvelope(d, result.envelope)) result.envelope_changed = true;
    if (d.hold) {
      std::string reason = d.hold_reason.empty() ? "held by " + entry.name : d.hold_reason;
      if (!result.hold) {
        result.hold_reason = std::move(reason);
      } else if (result.hold_reason.find(reason) == std::string::npos) {
        result.hold_reason += "; " + reason;
      }
      result.hold = true;
    }
  }

  if (result.action == ChainResult::Action::kDeliver && result.envelope.recipients_size() == 0) {
    // Filters removed every recipient: nothing to deliver, like a discard.
    result.action = ChainResult::Action::kDiscard;
    observe::Info("filter_no_recipients").Kv("session", session.session_id());
  }
  if (!trace_header_.empty()) {
    result.trace = TraceHeaderValue(hostname_, result.results, trace_header_.size());
  }
  if (result.action == ChainResult::Action::kDeliver) {
    if (result.hold) {
      const std::string mark = hold_key_ ? hold_key_->Sign(result.envelope.mail_from(), result.hold_reason)
                                         : smtp::HoldReasonText(result.hold_reason);
      edits.headers.push_back(HeaderEdit::Prepend(kHoldHeader, mark));
    }
    if (!result.trace.empty()) {
      HeaderEdit trace;
      trace.op = HeaderEdit::Op::kPrepend;
      trace.name = trace_header_;
      trace.raw_value = " " + result.trace;
      edits.headers.push_back(std::move(trace));
    }
  }
  co_return result;
}

}  // namespace sluice::filter_bridge
