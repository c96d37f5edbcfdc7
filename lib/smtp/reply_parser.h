// lib/smtp/reply_parser.h
//
// The client side of replies (RFC 5321 §4.2.1): parses "250-…" continuation lines up to the
// final "250 …" line from a read buffer, with the enhanced status code (RFC 2034) split off
// when present. Bounded: a reply line longer than max_line or a reply of more than max_lines
// lines is an error, as is a line whose code is missing or differs from the first line's.
//
// Never: accepts a reply that ends at a bare LF (only CRLF ends a reply line).
#pragma once

#include <cstddef>
#include <string_view>

#include "absl/status/status.h"
#include "lib/smtp/reply.h"

namespace sluice::smtp {

enum class ReplyStatus { kComplete, kNeedMore, kError };

struct ReplyParseResult {
  ReplyStatus status;
  size_t consumed = 0;   // bytes of the buffer the complete reply used
  absl::Status error;    // for kError
};

// Parses one reply at the start of buf into `out` when complete.
ReplyParseResult ParseReply(std::string_view buf, Reply& out, size_t max_line = 4096,
                            size_t max_lines = 100);

}  // namespace sluice::smtp
