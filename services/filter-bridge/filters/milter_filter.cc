// services/filter-bridge/filters/milter_filter.cc -- see milter_filter.h: Run, the per-transaction
// conversation (MilterTransaction) and the factory.
#include "services/filter-bridge/filters/milter_filter.h"

#include <optional>

#include "asio/this_coro.hpp"
#include "services/filter-bridge/filters/milter_session.h"

namespace sluice::filter_bridge {
namespace {
// A timeout field: 0 (unset) means the schema default.
std::chrono::seconds OrDefault(uint32_t seconds, std::chrono::seconds fallback) {
  return seconds == 0 ? fallback : std::chrono::seconds(seconds);
}

class MilterFilterFactory : public FilterFactory {
 public:
  std::string_view kind() const override { return "milter"; }
  absl::StatusOr<std::unique_ptr<Filter>> Create(const sluice::v1::FilterConfig& config,
                                                 const FilterFactoryContext& context) override {
    const sluice::v1::MilterConfig& mc = config.milter();
    auto address = ParseMilterAddress(mc.address());
    if (!address.ok()) return address.status();
    MilterFilter::Options options;
    options.name = config.name();
    options.address = *std::move(address);
    options.connect_timeout = OrDefault(mc.connect_timeout_seconds(), options.connect_timeout);
    options.command_timeout = OrDefault(mc.command_timeout_seconds(), options.command_timeout);
    options.content_timeout = OrDefault(mc.content_timeout_seconds(), options.content_timeout);
    options.daemon_name = context.bridge.milter_macro_daemon_name();
    return std::unique_ptr<Filter>(new MilterFilter(std::move(options)));
  }
};

// One transaction's events as the relay sees them; the conversation opens at MAIL.
class MilterTransaction : public FilterTransaction {
 public:
  explicit MilterTransaction(const MilterFilter::Options& options) : options_(options) {}

  asio::awaitable<FilterOutcome> Mail(const EnvelopeContext& ctx) override {
    if (session_) co_return absl::FailedPreconditionError("milter: MAIL twice");
    asio::any_io_executor executor = co_await asio::this_coro::executor;
    session_.emplace(options_, executor);
    co_return co_await session_->Mail(ctx);
  }
  asio::awaitable<FilterOutcome> Rcpt(const EnvelopeContext& ctx, const sluice::v1::Recipient& rcpt) override {
    if (!session_) co_return absl::FailedPreconditionError("milter: RCPT before MAIL");
    co_return co_await session_->Rcpt(ctx, rcpt);
  }
  asio::awaitable<FilterOutcome> Data(const EnvelopeContext& ctx) override {
    if (!session_) co_return absl::FailedPreconditionError("milter: DATA before MAIL");
    co_return co_await session_->Data(ctx);
  }
  asio::awaitable<FilterOutcome> Content(const FilterContext& ctx) override {
    if (!session_) co_return absl::FailedPreconditionError("milter: content before MAIL");
    co_return co_await session_->Content(ctx);
  }
  asio::awaitable<void> Close() override {
    if (session_) co_await session_->Quit();
  }

 private:
  const MilterFilter::Options& options_;
  std::optional<MilterSession> session_;
};

// Every event at once: the first decision other than continue is the message's.
asio::awaitable<FilterOutcome> RunWhole(MilterSession& session, const FilterContext& ctx) {
  const EnvelopeContext envelope{ctx.session, ctx.envelope, ctx.deadline, ctx.hostname};
  FilterOutcome d = co_await session.Mail(envelope);
  if (!d.ok() || d->verdict != Verdict::kContinue) co_return d;
  for (const sluice::v1::Recipient& r : ctx.envelope.recipients()) {
    d = co_await session.Rcpt(envelope, r);
    if (!d.ok() || d->verdict != Verdict::kContinue) co_return d;
  }
  d = co_await session.Data(envelope);
  if (!d.ok() || d->verdict != Verdict::kContinue) co_return d;
  co_return co_await session.Content(ctx);
}

}  // namespace

asio::awaitable<FilterOutcome> MilterFilter::Run(const FilterContext& ctx) {
  asio::any_io_executor executor = co_await asio::this_coro::executor;
  MilterSession session(options_, executor);
  FilterOutcome outcome = co_await RunWhole(session, ctx);
  co_await session.Quit();
  co_return outcome;
}

std::unique_ptr<FilterTransaction> MilterFilter::BeginTransaction() {
  return std::make_unique<MilterTransaction>(options_);
}

std::unique_ptr<FilterFactory> NewMilterFilterFactory() {
  return std::make_unique<MilterFilterFactory>();
}

}  // namespace sluice::filter_bridge
