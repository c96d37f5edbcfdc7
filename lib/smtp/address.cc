// lib/smtp/address.cc -- see address.h.
//
// A small recursive-descent scanner over the RFC 5321 §4.1.2 grammar:
//   Path       = "<" [ A-d-l ":" ] Mailbox ">"          (A-d-l: source route, ignored §C)
//   Mailbox    = Local-part "@" ( Domain / address-literal )
//   Local-part = Dot-string / Quoted-string
//   Domain     = sub-domain *("." sub-domain);  sub-domain = Let-dig [Ldh-str]
// extended by RFC 6531 §3.3 with UTF-8 in atext, qtext and sub-domains when allowed.
#include "lib/smtp/address.h"

#include <arpa/inet.h>

#include <cstdint>
#include <string>

#include "absl/status/status.h"

namespace sluice::smtp {
namespace {

// RFC 5321 §4.5.3.1.1-3.
constexpr size_t kMaxLocalPart = 64;
constexpr size_t kMaxDomain = 255;
constexpr size_t kMaxPath = 256;
constexpr size_t kMaxLabel = 63;  // RFC 1035 §2.3.4

bool IsAlpha(unsigned char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }
bool IsDigit(unsigned char c) { return c >= '0' && c <= '9'; }

// RFC 5322 atext.
bool IsAtext(unsigned char c) {
  if (IsAlpha(c) || IsDigit(c)) return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+': case '-':
    case '/': case '=': case '?': case '^': case '_': case '`': case '{': case '|': case '}':
    case '~':
      return true;
    default:
      return false;
  }
}

// Length of the well-formed UTF-8 multi-byte sequence at s[i] (RFC 3629 §4: no overlong
// forms, no surrogates, nothing above U+10FFFF), or 0.
size_t Utf8SequenceLength(std::string_view s, size_t i) {
  struct Lead {
    unsigned char first, last;  // range of the lead byte
    size_t len;                 // bytes in the sequence
    uint32_t payload_mask;      // code point bits in the lead byte
    uint32_t min;               // smallest code point of that length (no overlong forms)
  };
  static constexpr Lead kLeads[] = {
      {0xC2, 0xDF, 2, 0x1F, 0x80}, {0xE0, 0xEF, 3, 0x0F, 0x800}, {0xF0, 0xF4, 4, 0x07, 0x10000}};
  const auto c = static_cast<unsigned char>(s[i]);
  const Lead* lead = nullptr;
  for (const Lead& l : kLeads) {
    if (c >= l.first && c <= l.last) lead = &l;
  }
  if (lead == nullptr) return 0;
  const size_t len = lead->len;
  uint32_t cp = c & lead->payload_mask;
  if (s.size() - i < len) return 0;
  for (size_t k = 1; k < len; ++k) {
    const auto cc = static_cast<unsigned char>(s[i + k]);
    if ((cc & 0xC0) != 0x80) return 0;
    cp = cp << 6 | (cc & 0x3Fu);
  }
  if (cp < lead->min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

// "1.2.3.4" with each part 0..255 (RFC 5321 §4.1.3 Snum = 1*3DIGIT).
bool IsIpv4Literal(std::string_view s) {
  int parts = 0;
  size_t i = 0;
  while (true) {
    size_t start = i;
    int value = 0;
    while (i < s.size() && IsDigit(static_cast<unsigned char>(s[i])) && i - start < 3) {
      value = value * 10 + (s[i] - '0');
      ++i;
    }
    if (i == start || value > 255) return false;
    ++parts;
    if (i == s.size()) return parts == 4;
    if (s[i] != '.' || parts == 4) return false;
    ++i;
  }
}

bool IsIpv6Text(std::string_view s) {
  if (s.empty() || s.size() > 45) return false;  // INET6_ADDRSTRLEN - 1
  in6_addr addr;
  return inet_pton(AF_INET6, std::string(s).c_str(), &addr) == 1;
}

class Scanner {
 public:
  Scanner(std::string_view s, bool utf8) : s_(s), utf8_(utf8) {}

  size_t pos() const { return pos_; }
  bool AtEnd() const { return pos_ >= s_.size(); }
  bool Peek(char c) const { return pos_ < s_.size() && s_[pos_] == c; }
  bool Take(char c) {
    if (!Peek(c)) return false;
    ++pos_;
    return true;
  }

  // Mailbox = Local-part "@" ( Domain / address-literal )
  bool Mailbox() {
    const size_t start = pos_;
    if (!(Peek('"') ? QuotedString() : DotString())) return false;
    if (pos_ - start > kMaxLocalPart) return false;
    if (!Take('@')) return false;
    return DomainOrLiteral();
  }

  bool DomainOrLiteral() { return Peek('[') ? AddressLiteral() : Domain(); }

  // Domain = sub-domain *("." sub-domain), at most 255 octets, labels at most 63.
  bool Domain() {
    const size_t start = pos_;
    do {
      if (!SubDomain()) return false;
    } while (Take('.'));
    return pos_ - start <= kMaxDomain;
  }

  // A-d-l = At-domain *( "," At-domain ) ":"  -- parsed only to be skipped (RFC 5321 §C).
  bool SourceRoute() {
    do {
      if (!Take('@') || !Domain()) return false;
    } while (Take(','));
    return Take(':');
  }

 private:
  // Consumes one UTF-8 sequence if allowed and well-formed.
  bool TakeUtf8() {
    if (!utf8_ || AtEnd()) return false;
    const size_t len = Utf8SequenceLength(s_, pos_);
    if (len == 0) return false;
    pos_ += len;
    return true;
  }

  // Dot-string = Atom *("." Atom); Atom = 1*atext
  bool DotString() {
    do {
      const size_t start = pos_;
      while (!AtEnd()) {
        if (IsAtext(static_cast<unsigned char>(s_[pos_]))) {
          ++pos_;
        } else if (!TakeUtf8()) {
          break;
        }
      }
      if (pos_ == start) return false;  // empty atom: "..", leading or trailing dot
    } while (Take('.'));
    return true;
  }

  // Quoted-string = DQUOTE *QcontentSMTP DQUOTE
  // qtextSMTP = %d32-33 / %d35-91 / %d93-126;  quoted-pairSMTP = %d92 %d32-126
  bool QuotedString() {
    if (!Take('"')) return false;
    while (!AtEnd()) {
      const auto c = static_cast<unsigned char>(s_[pos_]);
      if (c == '"') {
        ++pos_;
        return true;
      }
      if (c == '\\') {
        ++pos_;
        if (AtEnd()) return false;
        const auto q = static_cast<unsigned char>(s_[pos_]);
        if (q < 32 || q > 126) return false;
        ++pos_;
      } else if (c >= 32 && c <= 126) {
        ++pos_;
      } else if (!TakeUtf8()) {
        return false;
      }
    }
    return false;  // unbalanced quote
  }

  // sub-domain = Let-dig [Ldh-str]  (or a U-label of UTF-8 when allowed, RFC 6531 §3.3)
  bool SubDomain() {
    const size_t start = pos_;
    bool last_hyphen = false;
    while (!AtEnd()) {
      const auto c = static_cast<unsigned char>(s_[pos_]);
      if (IsAlpha(c) || IsDigit(c)) {
        ++pos_;
        last_hyphen = false;
      } else if (c == '-') {
        if (pos_ == start) return false;
        ++pos_;
        last_hyphen = true;
      } else if (TakeUtf8()) {
        last_hyphen = false;
      } else {
        break;
      }
    }
    return pos_ > start && !last_hyphen && pos_ - start <= kMaxLabel;
  }

  // address-literal = "[" ( IPv4-address-literal / IPv6-address-literal ) "]"
  // General-address-literal needs an IANA-registered tag; only "IPv6" is registered.
  bool AddressLiteral() {
    if (!Take('[')) return false;
    const size_t start = pos_;
    while (!AtEnd() && s_[pos_] != ']') {
      const auto c = static_cast<unsigned char>(s_[pos_]);
      if (c < 33 || c > 126 || c == '[' || c == '\\') return false;  // dcontent
      ++pos_;
    }
    const std::string_view body = s_.substr(start, pos_ - start);
    if (!Take(']')) return false;
    if (body.size() > 5 && EqualsIgnoreCase(body.substr(0, 5), "IPv6:")) {
      return IsIpv6Text(body.substr(5));
    }
    return IsIpv4Literal(body);
  }

  std::string_view s_;
  bool utf8_;
  size_t pos_ = 0;
};

absl::Status BadPath(std::string_view why) {
  return absl::InvalidArgumentError(std::string("bad address syntax: ") + std::string(why));
}

}  // namespace

absl::StatusOr<std::string> ParsePath(std::string_view& in, bool allow_empty, bool allow_utf8,
                                      bool lenient) {
  Scanner scan(in, allow_utf8);
  std::string_view mailbox;
  if (scan.Take('<')) {
    if (scan.Take('>')) {
      if (!allow_empty) return BadPath("empty path");
    } else {
      if (scan.Peek('@') && !scan.SourceRoute()) return BadPath("source route");
      const size_t start = scan.pos();
      if (!scan.Mailbox()) return BadPath("mailbox");
      mailbox = in.substr(start, scan.pos() - start);
      if (!scan.Take('>')) return BadPath("missing '>'");
      if (scan.pos() > kMaxPath) return BadPath("path longer than 256 octets");
    }
  } else {
    if (!lenient) return BadPath("missing '<'");
    if (!scan.Mailbox()) return BadPath("mailbox");
    mailbox = in.substr(0, scan.pos());
    if (scan.pos() + 2 > kMaxPath) return BadPath("path longer than 256 octets");
  }
  // Whatever follows a path is separated from it by a space (the ESMTP parameters).
  if (!scan.AtEnd() && !scan.Peek(' ')) return BadPath("junk after path");
  std::string result(mailbox);
  in.remove_prefix(scan.pos());
  return result;
}

bool IsValidMailbox(std::string_view mailbox, bool allow_utf8, bool allow_postmaster) {
  if (allow_postmaster && EqualsIgnoreCase(mailbox, "postmaster")) return true;
  Scanner scan(mailbox, allow_utf8);
  return scan.Mailbox() && scan.AtEnd() && mailbox.size() + 2 <= kMaxPath;
}

bool IsValidDomain(std::string_view domain, bool allow_utf8) {
  Scanner scan(domain, allow_utf8);
  return scan.DomainOrLiteral() && scan.AtEnd();
}

std::string DomainOf(std::string_view mailbox) {
  if (!IsValidMailbox(mailbox, /*allow_utf8=*/true)) return "";
  // A domain or address literal never holds '@'; a quoted local part may.
  std::string domain(mailbox.substr(mailbox.rfind('@') + 1));
  for (char& c : domain) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return domain;
}

}  // namespace sluice::smtp
