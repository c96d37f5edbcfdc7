// services/frontend/inbound_headers.h
//
// One transaction's content on its way in, through the forged-header filter
// (lib/smtp/forged_header_filter.h): every X-Sluice-* field and every
// Authentication-Results field naming our authserv-id (config authserv_id, default the
// hostname; RFC 8601 §5) is taken out of what the client sent, before the filter stage sees
// it. Our own Received: is written outside it. What it removed is counted in
// sluice_frontend_header_fields_removed_total{header}.
//
// Never: holds more of the header than header_size_limit_bytes; touches the body.
#pragma once

#include <string>
#include <string_view>

#include "lib/smtp/forged_header_filter.h"
#include "services/frontend/frontend_context.h"

namespace sluice::frontend {

// The authserv-id this frontend owns: config authserv_id, else its hostname.
std::string AuthservId(const FrontendContext& ctx);

class InboundHeaders {
 public:
  InboundHeaders(FrontendContext& ctx, const sluice::v1::Limits& limits);

  // What passes of `chunk`; valid until the next call.
  std::string_view Filter(std::string_view chunk);
  // The content ended: what was still held back (usually nothing). Counts the removals.
  std::string_view Finish();

 private:
  FrontendContext& ctx_;
  smtp::ForgedHeaderFilter filter_;
  std::string out_;
};

}  // namespace sluice::frontend
