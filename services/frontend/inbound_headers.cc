// services/frontend/inbound_headers.cc -- see inbound_headers.h.
#include "services/frontend/inbound_headers.h"

namespace sluice::frontend {

std::string AuthservId(const FrontendContext& ctx) {
  return ctx.config.authserv_id().empty() ? ctx.hostname : ctx.config.authserv_id();
}

InboundHeaders::InboundHeaders(FrontendContext& ctx, const sluice::v1::Limits& limits)
    : ctx_(ctx), filter_({AuthservId(ctx), limits.header_size_limit_bytes()}) {}

std::string_view InboundHeaders::Filter(std::string_view chunk) {
  out_.clear();
  if (filter_.in_body()) return chunk;  // nothing more to look at: no copy
  filter_.Feed(chunk, out_);
  return out_;
}

std::string_view InboundHeaders::Finish() {
  out_.clear();
  filter_.Finish(out_);
  ctx_.metrics->HeaderFieldsRemoved("x_sluice", filter_.removed_sluice_fields());
  ctx_.metrics->HeaderFieldsRemoved("authentication_results", filter_.removed_authentication_results());
  return out_;
}

}  // namespace sluice::frontend
