// services/reinject/receive/header_cleanup.h
//
// What the after-filter cleanup does to the header of each message, as the content streams
// through (Postfix cleanup(8)): our Received: for this hop at the top, Message-ID: and Date:
// added at the end of the header when missing, and the in-band hold mark "X-Sluice-Hold:"
// (set by the filter stage, honoured only from a trusted peer) taken out of the message and
// turned into the queue state; the Received: fields are counted (loop detection). The header is held back until its end (bounded by the SMTP
// layer's header_size_limit); the body passes straight through.
//
// Never: changes a byte of the body or of the header fields it keeps; holds more than the
// header in memory.
#pragma once

#include <string>
#include <string_view>

namespace sluice::reinject {

class HeaderCleanup {
 public:
  struct Options {
    std::string received;     // our Received: field with CRLF, put first
    std::string message_id;   // "<...@host>", added when the message has none
    std::string date;         // RFC 5322 date, added when the message has none
    bool honour_hold = false; // the peer may hold mail with X-Sluice-Hold:
  };
  explicit HeaderCleanup(Options options) : o_(std::move(options)) {}

  // Appends to `out` what is to be written for this content chunk.
  void Feed(std::string_view content, std::string& out);
  // The content ended: flushes a header that never ended (a message without a body).
  void Finish(std::string& out);

  bool hold() const { return hold_; }
  // Received: fields the message came with (ours not counted): the hop count of loop
  // detection (Postfix hopcount_limit).
  int received_fields() const { return received_fields_; }
  const std::string& hold_reason() const { return hold_reason_; }

 private:
  void EmitHeader(std::string_view header, bool has_separator, std::string& out);

  Options o_;
  bool header_done_ = false;
  std::string header_;  // the header so far (until the empty line)
  bool hold_ = false;
  std::string hold_reason_;
  int received_fields_ = 0;
};

}  // namespace sluice::reinject
