// services/filter-bridge/message/crlf_normalizer.cc -- see crlf_normalizer.h.
#include "services/filter-bridge/message/crlf_normalizer.h"

namespace sluice::filter_bridge {

void CrlfNormalizer::Feed(std::string_view in, std::string* out) {
  out->reserve(out->size() + in.size() + 2);
  for (char c : in) {
    if (pending_cr_) {
      pending_cr_ = false;
      out->append("\r\n");
      at_line_start_ = true;
      if (c == '\n') continue;  // that CR and this LF were one CRLF
    }
    if (c == '\r') {
      pending_cr_ = true;
    } else if (c == '\n') {
      out->append("\r\n");
      at_line_start_ = true;
    } else {
      out->push_back(c);
      at_line_start_ = false;
    }
  }
}

void CrlfNormalizer::Finish(std::string* out) {
  if (pending_cr_ || !at_line_start_) out->append("\r\n");
  pending_cr_ = false;
  at_line_start_ = true;
}

}  // namespace sluice::filter_bridge
