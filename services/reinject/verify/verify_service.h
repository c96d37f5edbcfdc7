// services/reinject/verify/verify_service.h
//
// sluice.v1.Verify over gRPC (callback API), on reinject's admin port beside Admin and
// Queue: the frontend's RCPT check asks here whether an address is deliverable, and the
// RecipientVerifier answers from its cache or by probing the delivery route. A call never
// holds a gRPC thread: the reactor finishes when the verifier calls back. The wait a
// caller asks for is capped at kMaxWait.
//
// The call is read-only for access control (admin_auth.h: no bearer token needed), like
// GetStatus: it changes no state an operator set, and its cost is bounded by
// verify_probe_concurrency.
//
// Never: answers before the verifier did; accepts an address that is not one mailbox
// (empty, over 512 bytes, with control characters, spaces or angle brackets).
#pragma once

#include "absl/time/time.h"
#include "services/reinject/verify/recipient_verifier.h"
#include "sluice/v1/verify.grpc.pb.h"

namespace sluice::reinject {

class VerifyService final : public sluice::v1::Verify::CallbackService {
 public:
  static constexpr absl::Duration kMaxWait = absl::Seconds(60);

  explicit VerifyService(RecipientVerifier& verifier) : verifier_(verifier) {}

  grpc::ServerUnaryReactor* VerifyRecipient(grpc::CallbackServerContext* context,
                                            const sluice::v1::VerifyRecipientRequest* request,
                                            sluice::v1::VerifyRecipientResponse* response) override;

 private:
  RecipientVerifier& verifier_;
};

}  // namespace sluice::reinject
