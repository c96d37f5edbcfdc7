// lib/smtp/dot_stuffer.h
//
// The client side of DATA content (RFC 5321 §4.5.2): doubles a leading dot on every line
// and ends the content with CRLF.CRLF. Streams over arbitrary chunks.
//
// A dot is also doubled after a bare CR or bare LF: a lenient receiver that ends lines
// there must not see a "." line either (SMTP smuggling). So a round trip through DataReader
// is the identity for content whose line ends are all CRLF.
//
// Never: emits content that could end the message early (a lone "." line is always stuffed);
// changes line ends (content is expected with CRLF; a bare CR/LF is passed unchanged only
// because the server stages reject such content before it gets here).
#pragma once

#include <string>
#include <string_view>

namespace sluice::smtp {

class DotStuffer {
 public:
  // Appends the stuffed form of `content` to `out`.
  void Feed(std::string_view content, std::string& out);
  // Appends the end of data: a CRLF when the content did not end with one, then ".\r\n".
  // Leaves the stuffer ready for the next message.
  void Finish(std::string& out);
  void Reset() { at_line_start_ = true; last_cr_ = false; last_lf_ = false; }

 private:
  bool at_line_start_ = true;  // nothing fed yet, or the content so far ends with CRLF
  bool last_cr_ = false;       // the last byte fed was CR
  bool last_lf_ = false;       // the last byte fed was LF
};

}  // namespace sluice::smtp
