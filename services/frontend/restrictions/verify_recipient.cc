// services/frontend/restrictions/verify_recipient.cc -- see verify_recipient.h.
#include "services/frontend/restrictions/verify_recipient.h"

#include "lib/control/limits_store.h"

namespace sluice::frontend::restrictions {

asio::awaitable<Verdict> VerifyRecipient::Evaluate(const Request& request) {
  if (request.recipient.empty() || !verification_.Applies(request.recipient)) co_return Verdict::Dunno();
  smtp::Reply refused =
      co_await verification_.Check(std::string(request.recipient), limits_->Get(), request.facts->session_id);
  if (refused.empty()) co_return Verdict::Dunno();
  co_return Verdict::Refuse(refused.permanent() ? Action::kReject : Action::kDefer, std::move(refused),
                            "reject_unverified_recipient");
}

}  // namespace sluice::frontend::restrictions
