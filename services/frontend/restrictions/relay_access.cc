// services/frontend/restrictions/relay_access.cc -- see relay_access.h.
#include "services/frontend/restrictions/relay_access.h"

namespace sluice::frontend::restrictions {

asio::awaitable<Verdict> RelayAccess::Evaluate(const Request& request) {
  if (request.client_trusted) co_return Verdict::Ok("permit_mynetworks");
  if (policy_.RecipientAllowed(request.recipient, /*client_trusted=*/false)) co_return Verdict::Dunno();
  co_return Verdict::Refuse(Action::kReject, smtp::replies::RelayDenied(request.recipient),
                            "reject_unauth_destination");
}

}  // namespace sluice::frontend::restrictions
