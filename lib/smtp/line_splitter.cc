// lib/smtp/line_splitter.cc -- see line_splitter.h.
#include "lib/smtp/line_splitter.h"

namespace sluice::smtp {
namespace {

constexpr std::string_view kCrlf = "\r\n";

}  // namespace

LineResult NextLine(std::string_view buf, size_t max_len) {
  // Only a CRLF that ends within the first max_len bytes makes a line; look no further, so
  // a long buffer is never scanned twice and a line of exactly max_len bytes still fits.
  const size_t window = buf.size() < max_len ? buf.size() : max_len;
  const size_t pos = buf.substr(0, window).find(kCrlf);
  if (pos != std::string_view::npos) {
    return {LineStatus::kLine, buf.substr(0, pos), pos + kCrlf.size()};
  }
  if (buf.size() >= max_len) return {LineStatus::kTooLong, {}, 0};
  return {LineStatus::kNeedMore, {}, 0};
}

size_t SkipToLineEnd(std::string_view buf, bool& found) {
  const size_t pos = buf.find(kCrlf);
  if (pos != std::string_view::npos) {
    found = true;
    return pos + kCrlf.size();
  }
  found = false;
  // Keep a trailing CR: it may be the first half of the CRLF that ends the line.
  if (!buf.empty() && buf.back() == '\r') return buf.size() - 1;
  return buf.size();
}

}  // namespace sluice::smtp
