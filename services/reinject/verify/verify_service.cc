// services/reinject/verify/verify_service.cc -- see verify_service.h.
#include "services/reinject/verify/verify_service.h"

#include <algorithm>
#include <string_view>

namespace sluice::reinject {
namespace {

// RFC 5321 §4.5.3.1.3: a path is at most 256 octets; we leave room for SMTPUTF8 forms.
constexpr size_t kMaxAddressBytes = 512;

bool OneMailbox(std::string_view a) {
  if (a.empty() || a.size() > kMaxAddressBytes) return false;
  for (unsigned char c : a) {
    if (c <= ' ' || c == 0x7f || c == '<' || c == '>') return false;
  }
  return true;
}

}  // namespace

grpc::ServerUnaryReactor* VerifyService::VerifyRecipient(grpc::CallbackServerContext* context,
                                                         const sluice::v1::VerifyRecipientRequest* request,
                                                         sluice::v1::VerifyRecipientResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (!OneMailbox(request->address())) {
    reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "address is not one mailbox"));
    return reactor;
  }
  absl::Duration wait = std::min(absl::Milliseconds(request->wait_milliseconds()), kMaxWait);
  verifier_.Verify(request->address(), wait, [reactor, response](sluice::v1::VerifyRecipientResponse answer) {
    *response = std::move(answer);
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

}  // namespace sluice::reinject
