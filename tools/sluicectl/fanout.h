// tools/sluicectl/fanout.h
//
// One call per target, all at once (a thread each, synchronous stubs), answers kept in
// target order with their status, so every command can print partial results and fold the
// statuses into one exit code. A target whose name did not resolve gets UNAVAILABLE
// without a call.
//
// Never: lets one slow replica delay the others beyond its own deadline; drops a failure.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>
#include <grpcpp/support/status.h>

#include "tools/sluicectl/connection.h"
#include "tools/sluicectl/targets.h"

namespace sluice::ctl {

template <typename Response>
struct Reply {
  Target target;
  grpc::Status status;
  Response response;
};

// `call(channel, context, response)` makes the RPC and returns its status.
template <typename Response>
using CallFunction =
    std::function<grpc::Status(const std::shared_ptr<grpc::Channel>&, grpc::ClientContext*, Response*)>;

template <typename Response>
std::vector<Reply<Response>> CallEach(const std::vector<Target>& targets, const ConnectionOptions& options,
                                      const CallFunction<Response>& call,
                                      absl::Duration extra_deadline = absl::ZeroDuration()) {
  std::vector<Reply<Response>> replies(targets.size());
  std::vector<std::thread> threads;
  threads.reserve(targets.size());
  for (size_t i = 0; i < targets.size(); ++i) {
    replies[i].target = targets[i];
    if (!targets[i].resolve_error.empty()) {
      replies[i].status = grpc::Status(grpc::StatusCode::UNAVAILABLE, targets[i].resolve_error);
      continue;
    }
    threads.emplace_back([&, i] {
      grpc::ClientContext context;
      PrepareContext(context, options, extra_deadline);
      auto channel = OpenChannel(targets[i], options);
      replies[i].status = call(channel, &context, &replies[i].response);
    });
  }
  for (std::thread& t : threads) t.join();
  return replies;
}

}  // namespace sluice::ctl
