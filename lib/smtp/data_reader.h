// lib/smtp/data_reader.h
//
// The server side of DATA content (RFC 5321 §4.1.4, §4.5.2): removes dot-stuffing, finds the
// end-of-data line "CRLF . CRLF", and reports where the content ends so pipelined commands
// after it stay in the buffer. Streams: input arrives in arbitrary chunks (split at any
// byte), output is appended as it is decoded, memory does not grow with line length.
//
// Strict line ends (SMTP smuggling, CVE-2023-51764; Postfix smtpd_forbid_bare_newline): only
// CRLF ends a line, so only CRLF.CRLF ends the message. A bare CR or bare LF anywhere is
// recorded (bare_newline()) and the caller rejects the message after its real end; the
// sequences "\n.\n", "\r.\r", "\n.\r\n", "\r\n.\n", "\r\n.\r" never end it.
//
// NUL octets (RFC 5322 §3.5 text and RFC 6152 8BITMIME data exclude them) are recorded too
// (nul()): a downstream that drops NULs would read "CRLF NUL . CRLF" as an end of data (the
// "nullbefore/nullafter" smuggling variants), so the caller refuses such content.
//
// Also measures the header (bytes up to and including the empty line that ends it) so the
// caller can enforce header_size_limit.
//
// Never: ends the message at anything but CRLF.CRLF; buffers content.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace sluice::smtp {

class DataReader {
 public:
  struct Result {
    size_t consumed = 0;  // input bytes used (all of `in` unless done)
    bool done = false;    // the end-of-data line was consumed
  };

  // Decodes `in`, appending content to `out` (lines end in CRLF; the final CRLF before the
  // dot belongs to the content; an empty message yields nothing).
  Result Feed(std::string_view in, std::string& out);

  bool done() const { return done_; }
  bool bare_newline() const { return bare_cr_ || bare_lf_; }
  bool bare_cr() const { return bare_cr_; }
  bool bare_lf() const { return bare_lf_; }
  bool nul() const { return nul_; }  // a NUL octet was in the content
  uint64_t content_bytes() const { return content_bytes_; }  // bytes appended so far
  bool header_done() const { return header_done_; }
  uint64_t header_bytes() const { return header_bytes_; }    // header size so far
  // Longest content line seen, bytes without CRLF (for metrics/limits; lines are not buffered).
  uint64_t longest_line() const { return longest_line_; }

  void Reset() { *this = DataReader(); }

 private:
  Result Decode(std::string_view in, std::string& out);

  // Position in the current line / end sequence; see data_reader.cc.
  int state_ = 0;
  bool done_ = false;
  bool bare_cr_ = false;
  bool bare_lf_ = false;
  bool nul_ = false;
  bool header_done_ = false;
  uint64_t content_bytes_ = 0;
  uint64_t header_bytes_ = 0;
  uint64_t line_len_ = 0;
  uint64_t longest_line_ = 0;
};

}  // namespace sluice::smtp
