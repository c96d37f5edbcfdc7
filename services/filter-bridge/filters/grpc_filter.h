// services/filter-bridge/filters/grpc_filter.h
//
// The gRPC filter client (FilterConfig kind "grpc"): streams one message to an external
// sluice.v1.ContentFilter (FilterStart with the session record, envelope and size; one
// Header per field, unfolded; body chunks of chunk_bytes) and turns its FilterVerdict into a
// decision: ACCEPT (or unset) continue, REJECT 5xx (default 550 5.7.1 Message rejected),
// TEMPFAIL 4xx (default 451 4.7.1 Try again later), DISCARD, HOLD, header edits. The call's
// deadline is the filter deadline the chain computed: what the sender still has, capped by
// the filter's timeout; a filter answering early ends the stream there.
//
// Never: blocks an io thread on gRPC; lets a filter change the envelope (the API cannot).
#pragma once

#include <memory>
#include <string>

#include "services/filter-bridge/filters/filter.h"
#include "sluice/v1/filter.grpc.pb.h"

namespace sluice::filter_bridge {

class GrpcFilter : public Filter {
 public:
  GrpcFilter(std::string name, std::shared_ptr<grpc::Channel> channel, size_t chunk_bytes);
  asio::awaitable<FilterOutcome> Run(const FilterContext& ctx) override;

  // The decision a verdict stands for, or an error for a malformed verdict. Exposed for tests.
  static FilterOutcome DecisionFromVerdict(const sluice::v1::FilterVerdict& verdict);

 private:
  std::string name_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<sluice::v1::ContentFilter::Stub> stub_;
  size_t chunk_bytes_;
};

// Factory for FilterConfig.grpc.
std::unique_ptr<FilterFactory> NewGrpcFilterFactory();

}  // namespace sluice::filter_bridge
