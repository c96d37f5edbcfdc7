// lib/smtp/data_reader.cc -- see data_reader.h.
//
// A byte-at-a-time state machine (with a fast path through the middle of a line). The only
// bytes ever held back between Feed() calls are a CR whose meaning depends on the next byte
// and a line-initial dot; every other byte is appended to the output as soon as it is seen.
// So the output for a given input does not depend on how the input was split into chunks.
//
// RFC 5321 §4.1.1.4: the content ends with "<CRLF>.<CRLF>", where the first CRLF ends the
// last content line (and belongs to the content). The DATA command's own CRLF counts as that
// first CRLF, so ".<CRLF>" as the very first line is an empty message. §4.5.2: a line that
// starts with "." has that first dot removed.
#include "lib/smtp/data_reader.h"

#include <cstring>

namespace sluice::smtp {
namespace {

enum State : int {
  kLineStart = 0,  // after a CRLF (or at the start of the content)
  kMiddle,         // inside a line
  kCr,             // a CR inside a line, held: CRLF ends the line, CR + anything else is bare
  kDot,            // a dot at line start, dropped (stuffing, or the start of the terminator)
  kDotCr,          // ".CR" at line start, the CR held: ".CRLF" ends the content
};

}  // namespace

DataReader::Result DataReader::Feed(std::string_view in, std::string& out) {
  if (done_) return {0, true};
  Result r = Decode(in, out);
  // No NUL is part of a terminator or of stuffing, so a NUL among the bytes consumed is one
  // in the content (one memchr over what was read, whatever the state machine did).
  if (!nul_ && r.consumed > 0 && std::memchr(in.data(), '\0', r.consumed) != nullptr) nul_ = true;
  return r;
}

DataReader::Result DataReader::Decode(std::string_view in, std::string& out) {

  // Appends decoded line content (never a line-ending CRLF).
  auto emit = [&](std::string_view bytes) {
    out.append(bytes.data(), bytes.size());
    content_bytes_ += bytes.size();
    if (!header_done_) header_bytes_ += bytes.size();
    line_len_ += bytes.size();
    if (line_len_ > longest_line_) longest_line_ = line_len_;
  };
  auto emit_bare_cr = [&] {
    bare_cr_ = true;
    emit("\r");
  };
  auto emit_bare_lf = [&] {
    bare_lf_ = true;
    emit("\n");
  };
  auto end_line = [&] {
    out.append("\r\n");
    content_bytes_ += 2;
    if (!header_done_) {
      header_bytes_ += 2;
      // The first empty line ends the header (RFC 5322 §2.1); its CRLF counts as header.
      if (line_len_ == 0) header_done_ = true;
    }
    line_len_ = 0;
  };

  size_t i = 0;
  const size_t n = in.size();
  while (i < n) {
    const char c = in[i];
    switch (state_) {
      case kLineStart:
        ++i;
        if (c == '.') {
          state_ = kDot;
        } else if (c == '\r') {
          state_ = kCr;
        } else if (c == '\n') {
          emit_bare_lf();  // a bare LF does not start a new line: no dot may follow it
          state_ = kMiddle;
        } else {
          --i;  // an ordinary first byte: the line's run starts here (kMiddle copies it)
          state_ = kMiddle;
        }
        break;

      case kMiddle: {
        // Fast path: find the run up to the next CR or LF with memchr, and copy a whole
        // CRLF-terminated line (the common case) in one append.
        const char* p = in.data() + i;
        const size_t left = n - i;
        const char* cr = static_cast<const char*>(std::memchr(p, '\r', left));
        size_t run = cr != nullptr ? static_cast<size_t>(cr - p) : left;
        if (const char* lf = static_cast<const char*>(std::memchr(p, '\n', run)); lf != nullptr) {
          run = static_cast<size_t>(lf - p);
          if (run > 0) emit(std::string_view(p, run));
          emit_bare_lf();
          i += run + 1;
          break;
        }
        if (cr != nullptr && run + 1 < left && p[run + 1] == '\n') {
          out.append(p, run + 2);
          content_bytes_ += run;
          if (!header_done_) header_bytes_ += run;
          line_len_ += run;
          if (line_len_ > longest_line_) longest_line_ = line_len_;
          content_bytes_ += 2;
          if (!header_done_) {
            header_bytes_ += 2;
            if (line_len_ == 0) header_done_ = true;
          }
          line_len_ = 0;
          state_ = kLineStart;
          i += run + 2;
          break;
        }
        if (run > 0) emit(std::string_view(p, run));
        i += run;
        if (cr != nullptr) {
          state_ = kCr;
          ++i;
        }
        break;
      }

      case kCr:
        ++i;
        if (c == '\n') {
          end_line();
          state_ = kLineStart;
        } else if (c == '\r') {
          emit_bare_cr();  // the held CR was bare; this one is held in its place
        } else {
          emit_bare_cr();
          emit(std::string_view(&in[i - 1], 1));
          state_ = kMiddle;
        }
        break;

      case kDot:
        ++i;
        if (c == '\r') {
          state_ = kDotCr;
        } else if (c == '\n') {
          emit_bare_lf();  // ".LF" is not the terminator: dot removed, bare LF kept
          state_ = kMiddle;
        } else {
          emit(std::string_view(&in[i - 1], 1));  // the stuffing dot is gone
          state_ = kMiddle;
        }
        break;

      case kDotCr:
        ++i;
        if (c == '\n') {
          done_ = true;
          return {i, true};
        }
        if (c == '\r') {
          emit_bare_cr();
          state_ = kCr;
        } else {
          emit_bare_cr();  // ".CR x": a dot-stuffed line holding a bare CR
          emit(std::string_view(&in[i - 1], 1));
          state_ = kMiddle;
        }
        break;
    }
  }
  return {i, false};
}

}  // namespace sluice::smtp
