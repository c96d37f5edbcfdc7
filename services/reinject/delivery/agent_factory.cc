// services/reinject/delivery/agent_factory.cc -- see agent_factory.h.
#include "services/reinject/delivery/agent_factory.h"

#include "absl/strings/str_cat.h"
#include "services/reinject/delivery/maildir_agent.h"

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
  if (kind == "smtp" || kind == "lmtp") {
    return absl::UnimplementedError(absl::StrCat("deliver: ", std::string(kind),
                                                 ": relay delivery is not implemented yet (use maildir:DIR)"));
  }
  return absl::InvalidArgumentError(absl::StrCat("deliver: \"", std::string(spec),
                                                 "\" is not maildir:DIR, smtp:HOST:PORT or lmtp:HOST:PORT"));
}

}  // namespace sluice::reinject
