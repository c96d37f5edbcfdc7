// tests/services/filter-bridge/sample_grpc_filter.h
//
// A sample external content filter written against sluice/v1/filter.proto, the way a user
// would write one: it reads the stream (FilterStart, headers, body chunks) and answers once.
// Its policy, keyed on the Subject so tests can steer it:
//   "reject-me"  -> REJECT 554 5.7.1 "sample says no"
//   "tempfail-me"-> TEMPFAIL (defaults)
//   "hold-me"    -> HOLD, reason "sample hold"
//   "early"      -> answers ACCEPT after the first header, without reading the rest
//   "slow"       -> waits until the client gives up (deadline or cancel), answers nothing
//   otherwise    -> ACCEPT, PREPEND X-Sample-Top, ADD X-Sample-Filter with what it saw,
//                   REMOVE X-Remove-Me
// It runs a gRPC server on 127.0.0.1 (an ephemeral port) until destroyed.
//
// Never: used by production code.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>

#include "grpcpp/grpcpp.h"
#include "sluice/v1/filter.grpc.pb.h"

namespace sluice::filter_bridge::testing {

class SampleContentFilter final : public sluice::v1::ContentFilter::Service {
 public:
  grpc::Status Filter(grpc::ServerContext* context, grpc::ServerReader<sluice::v1::FilterRequest>* reader,
                      sluice::v1::FilterVerdict* verdict) override;

  // What the last call saw.
  struct Seen {
    sluice::v1::FilterStart start;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
    bool deadline_set = false;
    bool cancelled = false;
  };
  Seen last() const;
  int calls() const { return calls_.load(); }

 private:
  mutable std::mutex mu_;
  Seen last_;
  std::atomic<int> calls_{0};
};

class SampleFilterServer {
 public:
  SampleFilterServer();
  ~SampleFilterServer();
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  SampleContentFilter& service() { return service_; }

 private:
  SampleContentFilter service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

}  // namespace sluice::filter_bridge::testing
