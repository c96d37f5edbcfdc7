// lib/smtp/reply_parser.cc -- see reply_parser.h.
//
// RFC 5321 §4.2:  Reply-line = *( Reply-code "-" [ textstring ] CRLF )
//                              Reply-code [ SP textstring ] CRLF
//                 Reply-code = %x32-35 %x30-35 %x30-39
// RFC 2034 §4: with ENHANCEDSTATUSCODES every line's text starts with the enhanced code; it
// is split off when its class matches the reply code's first digit (a greeting or an EHLO
// keyword that merely looks like "2.0.0" stays text).
//
// Errors: kInvalidArgument for a malformed reply, kResourceExhausted for a reply over the
// line length or line count bound. Only complete lines are judged, so the result does not
// depend on how the reply was split across reads.
#include "lib/smtp/reply_parser.h"

#include <string>

#include "lib/smtp/line_splitter.h"

namespace sluice::smtp {
namespace {

ReplyParseResult Error(absl::Status status) {
  return {ReplyStatus::kError, 0, std::move(status)};
}

bool HasControlLineEnd(std::string_view line) {
  for (char c : line) {
    if (c == '\r' || c == '\n' || c == '\0') return true;
  }
  return false;
}

// Splits a leading enhanced code of the reply's class off `text`; returns it or "".
std::string_view TakeEnhanced(std::string_view& text, char reply_class) {
  const size_t end = text.find(' ');
  const std::string_view token = text.substr(0, end);
  if (token.empty() || token[0] != reply_class || !IsEnhancedCode(token)) return {};
  text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
  return token;
}

}  // namespace

ReplyParseResult ParseReply(std::string_view buf, Reply& out, size_t max_line, size_t max_lines) {
  Reply reply;
  size_t pos = 0;
  for (;;) {
    const LineResult next = NextLine(buf.substr(pos), max_line);
    if (next.status == LineStatus::kNeedMore) return {ReplyStatus::kNeedMore, 0, {}};
    if (next.status == LineStatus::kTooLong) {
      return Error(absl::ResourceExhaustedError("reply line too long"));
    }
    const std::string_view line = next.line;
    pos += next.consumed;

    if (HasControlLineEnd(line)) {
      return Error(absl::InvalidArgumentError("bare CR, LF or NUL in reply line"));
    }
    if (line.size() < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '5' ||
        line[2] < '0' || line[2] > '9') {
      return Error(absl::InvalidArgumentError("reply line without a reply code"));
    }
    const int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    if (reply.lines.empty()) {
      reply.code = code;
    } else if (code != reply.code) {
      return Error(absl::InvalidArgumentError("reply code differs between reply lines"));
    }
    const char separator = line.size() == 3 ? ' ' : line[3];
    if (separator != ' ' && separator != '-') {
      return Error(absl::InvalidArgumentError("reply code not followed by space or '-'"));
    }
    std::string_view text = line.size() > 4 ? line.substr(4) : std::string_view();
    if (reply.lines.empty()) {
      reply.enhanced = std::string(TakeEnhanced(text, line[0]));
    } else if (!reply.enhanced.empty()) {
      std::string_view copy = text;
      if (TakeEnhanced(copy, line[0]) == reply.enhanced) text = copy;
    }
    reply.lines.emplace_back(text);

    if (separator == ' ') {
      out = std::move(reply);
      return {ReplyStatus::kComplete, pos, {}};
    }
    if (reply.lines.size() >= max_lines) {
      return Error(absl::ResourceExhaustedError("reply has too many lines"));
    }
  }
}

}  // namespace sluice::smtp
