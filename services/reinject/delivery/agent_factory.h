// services/reinject/delivery/agent_factory.h
//
// The delivery agent named by --deliver / ReinjectConfig.deliver:
//   maildir:DIR       local Maildir delivery (MaildirAgent)
//   smtp:HOST:PORT    relay over SMTP to one next hop (RelayAgent)
//   lmtp:HOST:PORT    relay over LMTP to one next hop (RelayAgent), e.g. Dovecot
//   discard[:TEXT]    accept every recipient, deliver nothing (DiscardAgent, Postfix discard(8))
//
// Never: accepts a spec it cannot honour (a bad spec is INVALID_ARGUMENT naming it).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "asio/any_io_executor.hpp"
#include "services/reinject/delivery/delivery_agent.h"
#include "services/reinject/queue/queue_limits.h"
#include "sluice/v1/config.pb.h"

namespace sluice::reinject {

struct AgentContext {
  std::string hostname;            // myhostname: Maildir file names, EHLO/LHLO
  asio::any_io_executor blocking;  // the blocking pool's executor
  LimitsSource limits;             // relays: timeouts, connection reuse (null: defaults)
  sluice::v1::TlsConfig tls;       // relays: delivery_tls (STARTTLS client side)
  std::string temp_dir;            // relays: where the 8BITMIME downgrade's unnamed copy lives
};

absl::StatusOr<std::unique_ptr<DeliveryAgent>> MakeDeliveryAgent(std::string_view spec, const AgentContext& context);

}  // namespace sluice::reinject
