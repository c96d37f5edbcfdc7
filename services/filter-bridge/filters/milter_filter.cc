// services/filter-bridge/filters/milter_filter.cc -- see milter_filter.h: Run and the factory.
#include "services/filter-bridge/filters/milter_filter.h"

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
                                                 const FilterFactoryContext&) override {
    const sluice::v1::MilterConfig& mc = config.milter();
    auto address = ParseMilterAddress(mc.address());
    if (!address.ok()) return address.status();
    MilterFilter::Options options;
    options.name = config.name();
    options.address = *std::move(address);
    options.connect_timeout = OrDefault(mc.connect_timeout_seconds(), options.connect_timeout);
    options.command_timeout = OrDefault(mc.command_timeout_seconds(), options.command_timeout);
    options.content_timeout = OrDefault(mc.content_timeout_seconds(), options.content_timeout);
    return std::unique_ptr<Filter>(new MilterFilter(std::move(options)));
  }
};

}  // namespace

asio::awaitable<FilterOutcome> MilterFilter::Run(const FilterContext& ctx) {
  MilterSession session(options_, ctx, co_await asio::this_coro::executor);
  co_return co_await session.Run();
}

std::unique_ptr<FilterFactory> NewMilterFilterFactory() {
  return std::make_unique<MilterFilterFactory>();
}

}  // namespace sluice::filter_bridge
