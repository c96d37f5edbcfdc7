// lib/smtp/line_splitter.h
//
// Finds SMTP command lines in a read buffer: a line ends only at CRLF (RFC 5321 §2.3.8);
// a bare CR or LF inside stays in the line (the command parser then refuses it). Lines
// longer than the limit are reported, so the caller can discard up to the next CRLF without
// buffering them. Used for commands (server) and replies (client).
//
// Never: treats a bare LF or bare CR as a line end; reads past `buf`.
#pragma once

#include <cstddef>
#include <string_view>

namespace sluice::smtp {

enum class LineStatus {
  kLine,      // `line` is a complete line without CRLF; `consumed` includes the CRLF
  kNeedMore,  // no CRLF yet and the buffer is still within max_len
  kTooLong,   // no CRLF within max_len bytes (max_len includes the CRLF)
};

struct LineResult {
  LineStatus status;
  std::string_view line;
  size_t consumed = 0;
};

LineResult NextLine(std::string_view buf, size_t max_len);

// For discarding an over-long line: returns how many bytes of `buf` belong to the rest of
// the current line, including its CRLF when found (`found` = true), else all of buf but a
// trailing CR (which may start the CRLF).
size_t SkipToLineEnd(std::string_view buf, bool& found);

}  // namespace sluice::smtp
