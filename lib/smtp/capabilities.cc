// lib/smtp/capabilities.cc -- see capabilities.h.
//
// RFC 5321 §4.1.1.1: ehlo-line = ehlo-keyword *( SP ehlo-param ); keywords are
// case-insensitive. "AUTH=PLAIN LOGIN" is the pre-RFC 2554 form some servers (Postfix with
// broken_sasl_auth_clients) announce in addition to "AUTH PLAIN LOGIN"; both count.
#include "lib/smtp/capabilities.h"

#include <string_view>

namespace sluice::smtp {
namespace {

std::string ToUpper(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return out;
}

std::vector<std::string_view> Words(std::string_view line) {
  std::vector<std::string_view> words;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && line[i] == ' ') ++i;
    const size_t start = i;
    while (i < line.size() && line[i] != ' ') ++i;
    if (i > start) words.push_back(line.substr(start, i - start));
  }
  return words;
}

void AddUnique(std::vector<std::string>& list, std::string_view word) {
  std::string upper = ToUpper(word);
  for (const std::string& have : list) {
    if (have == upper) return;
  }
  list.push_back(std::move(upper));
}

// SIZE's parameter (RFC 1870 §4): a decimal byte count; anything else reads as "no limit
// announced" (0) rather than as a bogus limit.
uint64_t ParseSizeLimit(std::string_view digits) {
  if (digits.empty() || digits.size() > 19) return 0;
  uint64_t n = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return 0;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  return n;
}

}  // namespace

Capabilities ParseCapabilities(const Reply& ehlo_reply) {
  Capabilities caps;
  if (ehlo_reply.code != 250) return caps;
  for (size_t i = 1; i < ehlo_reply.lines.size(); ++i) {
    const std::vector<std::string_view> words = Words(ehlo_reply.lines[i]);
    if (words.empty()) continue;
    std::string keyword = ToUpper(words[0]);
    std::vector<std::string_view> params(words.begin() + 1, words.end());
    if (keyword.rfind("AUTH=", 0) == 0) {
      params.insert(params.begin(), words[0].substr(5));
      keyword = "AUTH";
    }

    if (keyword == "PIPELINING") {
      caps.pipelining = true;
    } else if (keyword == "SIZE") {
      caps.size = true;
      caps.size_limit = params.empty() ? 0 : ParseSizeLimit(params[0]);
    } else if (keyword == "8BITMIME") {
      caps.eightbitmime = true;
    } else if (keyword == "ENHANCEDSTATUSCODES") {
      caps.enhanced_status_codes = true;
    } else if (keyword == "SMTPUTF8") {
      caps.smtputf8 = true;
    } else if (keyword == "DSN") {
      caps.dsn = true;
    } else if (keyword == "STARTTLS") {
      caps.starttls = true;
    } else if (keyword == "CHUNKING") {
      caps.chunking = true;
    } else if (keyword == "XFORWARD") {
      caps.xforward = true;
      for (std::string_view p : params) AddUnique(caps.xforward_attrs, p);
    } else if (keyword == "AUTH") {
      for (std::string_view p : params) {
        if (!p.empty()) AddUnique(caps.auth, p);
      }
    }
  }
  return caps;
}

}  // namespace sluice::smtp
