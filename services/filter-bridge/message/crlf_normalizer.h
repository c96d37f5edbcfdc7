// services/filter-bridge/message/crlf_normalizer.h
//
// Makes filter-supplied content (a milter's replacement body) safe to relay: every line ends
// in CRLF. A bare LF or a bare CR becomes CRLF, a final line without one gets it. Streaming:
// chunks may split a CRLF anywhere.
//
// Never: lets a bare CR or LF through to the downstream SMTP session (SMTP smuggling).
#pragma once

#include <string>
#include <string_view>

namespace sluice::filter_bridge {

class CrlfNormalizer {
 public:
  // Appends the normalized form of `in` to *out.
  void Feed(std::string_view in, std::string* out);
  // Appends what the end of input implies (a pending CR's LF, a final line's CRLF).
  void Finish(std::string* out);

 private:
  bool pending_cr_ = false;  // the last byte fed was a CR
  bool at_line_start_ = true;
};

}  // namespace sluice::filter_bridge
