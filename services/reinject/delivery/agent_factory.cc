// services/reinject/delivery/agent_factory.cc -- see agent_factory.h.
#include "services/reinject/delivery/agent_factory.h"

#include "absl/strings/str_cat.h"
#include "lib/net/host_port.h"
#include "services/reinject/delivery/discard_agent.h"
#include "services/reinject/delivery/maildir_agent.h"
#include "services/reinject/delivery/relay_agent.h"

namespace sluice::reinject {

absl::StatusOr<std::unique_ptr<DeliveryAgent>> MakeDeliveryAgent(std::string_view spec, const AgentContext& context) {
  size_t colon = spec.find(':');
  std::string_view kind = spec.substr(0, colon);
  std::string_view rest = colon == std::string_view::npos ? std::string_view() : spec.substr(colon + 1);
  if (kind == "maildir") {
    if (rest.empty()) return absl::InvalidArgumentError("deliver: maildir needs a directory (maildir:DIR)");
    return std::unique_ptr<DeliveryAgent>(
        new MaildirAgent(MaildirOptions{std::string(rest), context.hostname}, context.blocking));
  }
  if (kind == "discard") {
    // Text with a CR or LF would break the reply and the log line.
    if (rest.find_first_of("\r\n") != std::string_view::npos) {
      return absl::InvalidArgumentError("deliver: discard:TEXT must be one line");
    }
    return std::unique_ptr<DeliveryAgent>(new DiscardAgent(std::string(rest)));
  }
  if (kind == "smtp" || kind == "lmtp") {
    auto next_hop = net::ParseHostPort(rest);
    if (!next_hop.ok() || next_hop->host.empty() || next_hop->port == 0) {
      return absl::InvalidArgumentError(absl::StrCat("deliver: \"", std::string(spec), "\" needs ",
                                                     std::string(kind), ":HOST:PORT"));
    }
    RelayOptions o;
    o.lmtp = kind == "lmtp";
    o.next_hop = *std::move(next_hop);
    o.helo_name = context.hostname;
    o.limits = context.limits;
    o.tls = context.tls;
    o.blocking = context.blocking;
    if (!context.temp_dir.empty()) o.temp_dir = context.temp_dir;
    auto agent = RelayAgent::Create(std::move(o));
    if (!agent.ok()) return agent.status();
    return std::unique_ptr<DeliveryAgent>(std::move(*agent));
  }
  return absl::InvalidArgumentError(absl::StrCat("deliver: \"", std::string(spec),
                                                 "\" is not maildir:DIR, smtp:HOST:PORT, lmtp:HOST:PORT or discard[:TEXT]"));
}

}  // namespace sluice::reinject
