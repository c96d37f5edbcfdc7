// services/frontend/restrictions/verify_recipient.h
//
// reject_unverified_recipient as a check of the RCPT list: the recipient verification of
// recipient_verification.h (reinject's Verify service probing the final destination), placed
// after relay_access -- so clients in mynetworks, which relay_access permits, are never
// verified -- and before the policy servers, so an unknown user is refused before a
// greylisting server records it. Its refusals (550 5.1.1 / 450 4.1.1) are logged and counted
// by Restrictions like every other check's.
//
// Never: verifies a recipient verify_domains leaves out; turns a verification failure into a 5xx
// (RecipientVerification answers 4xx for those).
#pragma once

#include "services/frontend/recipient_verification.h"
#include "services/frontend/restrictions/check.h"

namespace sluice::control {
class LimitsStore;
}

namespace sluice::frontend::restrictions {

class VerifyRecipient : public Check {
 public:
  VerifyRecipient(RecipientVerification& verification, const control::LimitsStore* limits)
      : verification_(verification), limits_(limits) {}
  std::string_view name() const override { return "verify_recipient"; }
  asio::awaitable<Verdict> Evaluate(const Request& request) override;

 private:
  RecipientVerification& verification_;
  const control::LimitsStore* limits_;
};

}  // namespace sluice::frontend::restrictions
