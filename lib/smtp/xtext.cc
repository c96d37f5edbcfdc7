// lib/smtp/xtext.cc -- see xtext.h.
//
// RFC 3461 §4:  xtext = *( xchar / hexchar )
//               xchar = any ASCII CHAR between "!" (33) and "~" (126) inclusive, except "+" and "="
//               hexchar = "+" followed by two upper-case hexadecimal digits
// Decoding also accepts lower-case hex digits (robustness; it is unambiguous), but nothing
// else: a raw space, control, "=" or 8-bit byte is an error, never passed through.
#include "lib/smtp/xtext.h"

#include "absl/status/status.h"

namespace sluice::smtp {
namespace {

constexpr char kHexDigits[] = "0123456789ABCDEF";

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

bool IsXchar(unsigned char c) { return c >= 33 && c <= 126 && c != '+' && c != '='; }

}  // namespace

std::string XtextEncode(std::string_view raw) {
  std::string out;
  out.reserve(raw.size());
  for (char ch : raw) {
    const auto c = static_cast<unsigned char>(ch);
    if (IsXchar(c)) {
      out.push_back(ch);
    } else {
      out.push_back('+');
      out.push_back(kHexDigits[c >> 4]);
      out.push_back(kHexDigits[c & 0xF]);
    }
  }
  return out;
}

absl::StatusOr<std::string> XtextDecode(std::string_view xtext) {
  std::string out;
  out.reserve(xtext.size());
  for (size_t i = 0; i < xtext.size(); ++i) {
    const auto c = static_cast<unsigned char>(xtext[i]);
    if (c == '+') {
      if (xtext.size() - i < 3) return absl::InvalidArgumentError("xtext: truncated +XX escape");
      const int hi = HexValue(xtext[i + 1]);
      const int lo = HexValue(xtext[i + 2]);
      if (hi < 0 || lo < 0) return absl::InvalidArgumentError("xtext: bad +XX escape");
      out.push_back(static_cast<char>(hi << 4 | lo));
      i += 2;
    } else if (IsXchar(c)) {
      out.push_back(static_cast<char>(c));
    } else {
      return absl::InvalidArgumentError("xtext: character outside xchar");
    }
  }
  return out;
}

}  // namespace sluice::smtp
