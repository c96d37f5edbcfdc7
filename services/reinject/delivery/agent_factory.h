// services/reinject/delivery/agent_factory.h
//
// The delivery agent named by --deliver / ReinjectConfig.deliver:
//   maildir:DIR       local Maildir delivery (MaildirAgent)
//   smtp:HOST:PORT    relay over SMTP   } not yet: they wait for lib/smtp/client_session.h
//   lmtp:HOST:PORT    relay over LMTP   } and answer UNIMPLEMENTED
//
// Never: accepts a spec it cannot honour (a bad spec is INVALID_ARGUMENT naming it).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "asio/any_io_executor.hpp"
#include "services/reinject/delivery/delivery_agent.h"

namespace sluice::reinject {

struct AgentContext {
  std::string hostname;            // myhostname: Maildir file names, EHLO/LHLO
  asio::any_io_executor blocking;  // the blocking pool's executor
};

absl::StatusOr<std::unique_ptr<DeliveryAgent>> MakeDeliveryAgent(std::string_view spec, const AgentContext& context);

}  // namespace sluice::reinject
