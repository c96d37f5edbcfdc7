// services/reinject/receive/header_cleanup.h
//
// What the after-filter cleanup does to the header of each message, as the content streams
// through (Postfix cleanup(8)): our Received: for this hop at the top, Message-ID: and Date:
// added at the end of the header when missing, and the in-band hold mark "X-Sluice-Hold:"
// taken out of the message and, when it proves it comes from our filter stage, turned into
// the queue state (lib/smtp/hold_mark.h: its MAC verifies with hold_mark_key_file; without a
// key, only from a peer trusted by a verified client certificate); the Received: fields are
// counted (loop detection). The header is held back until its end (bounded by the SMTP
// layer's header_size_limit); the body passes straight through.
//
// Never: changes a byte of the body or of the header fields it keeps; holds more than the
// header in memory.
#pragma once

#include <string>
#include <string_view>

#include "lib/smtp/hold_mark.h"

namespace sluice::reinject {

class HeaderCleanup {
 public:
  struct Options {
    std::string received;     // our Received: field with CRLF, put first
    std::string message_id;   // "<...@host>", added when the message has none
    std::string date;         // RFC 5322 date, added when the message has none
    // How a hold mark is judged: with a key, its MAC must verify for `sender`; without one,
    // any mark holds when the peer is trusted by a verified client certificate.
    const smtp::HoldMarkKey* hold_key = nullptr;
    bool hold_by_certificate = false;
    std::string sender;       // the envelope sender (the MAC covers it)
  };
  explicit HeaderCleanup(Options options) : o_(std::move(options)) {}

  // Appends to `out` what is to be written for this content chunk.
  void Feed(std::string_view content, std::string& out);
  // The content ended: flushes a header that never ended (a message without a body).
  void Finish(std::string& out);

  bool hold() const { return hold_; }
  // The Message-ID this cleanup added (the message had none), else "".
  const std::string& added_message_id() const { return added_message_id_; }
  // Received: fields the message came with (ours not counted): the hop count of loop
  // detection (Postfix hopcount_limit).
  int received_fields() const { return received_fields_; }
  const std::string& hold_reason() const { return hold_reason_; }
  // Hold marks taken out without being honoured (no or wrong MAC, untrusted peer), and why
  // the last one was.
  int ignored_hold_marks() const { return ignored_hold_marks_; }
  const std::string& ignored_hold_mark_reason() const { return ignored_reason_; }

 private:
  void EmitHeader(std::string_view header, bool has_separator, std::string& out);
  void JudgeHoldMark(std::string_view value);  // the field's value, after the colon

  Options o_;
  bool header_done_ = false;
  std::string header_;  // the header so far (until the empty line)
  bool hold_ = false;
  std::string hold_reason_;
  int received_fields_ = 0;
  int ignored_hold_marks_ = 0;
  std::string ignored_reason_;
  std::string added_message_id_;
};

}  // namespace sluice::reinject
