// tests/fuzz/fuzz_xforward.cc
//
// ParseXforward on arbitrary arguments, then EncodeXforward of what was parsed. Invariants:
// a failed parse changes nothing; every encoded command is "XFORWARD ..." below 512 bytes
// with its CRLF and holds only announced attributes; the commands parse back to the same
// attributes (values short enough to escape truncation).
//
// Never: calls anything with side effects.
#include <cctype>
#include <string>
#include <string_view>
#include <vector>

#include "lib/smtp/xforward.h"
#include "lib/smtp/xtext.h"
#include "tests/fuzz/fuzz_check.h"

using namespace sluice::smtp;

namespace {

const char* const kNames[] = {"NAME", "ADDR", "PORT", "PROTO", "HELO", "IDENT", "SOURCE"};

bool Same(const XforwardAttrs& a, const XforwardAttrs& b) {
  return a.name == b.name && a.addr == b.addr && a.port == b.port && a.proto == b.proto &&
         a.helo == b.helo && a.ident == b.ident && a.source == b.source;
}

bool HasPrefixIgnoreCase(const std::optional<std::string>& v, std::string_view prefix) {
  if (!v || v->size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (std::toupper(static_cast<unsigned char>((*v)[i])) != prefix[i]) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t announce_mask = data[0];
  const std::string_view argument(reinterpret_cast<const char*>(data + 1), size - 1);

  XforwardAttrs attrs;
  attrs.ident = "previous";
  const XforwardAttrs before = attrs;
  if (!ParseXforward(argument, attrs).ok()) {
    FUZZ_CHECK(Same(attrs, before));
    return 0;
  }

  std::vector<std::string> announced;
  for (int i = 0; i < 7; ++i) {
    if (announce_mask & (1 << i)) announced.emplace_back(kNames[i]);
  }
  const std::vector<std::string> commands = EncodeXforward(attrs, announced);
  XforwardAttrs back;
  for (const std::string& c : commands) {
    FUZZ_CHECK(c.size() + 2 < 512);
    FUZZ_CHECK(c.rfind("XFORWARD ", 0) == 0);
    FUZZ_CHECK(ParseXforward(std::string_view(c).substr(9), back).ok());
  }
  // Only announced attributes went out.
  const std::optional<std::string>* fields[] = {&back.name,  &back.addr,  &back.port,  &back.proto,
                                                &back.helo,  &back.ident, &back.source};
  for (int i = 0; i < 7; ++i) {
    if (!(announce_mask & (1 << i))) FUZZ_CHECK(!fields[i]->has_value());
  }
  if (announce_mask % 128 != 127) return 0;

  // Everything announced: a full round trip. A parsed value re-encodes no longer than it
  // came (canonical xtext), so nothing is cut, except an IPv6 address that gets its "IPV6:"
  // back; and an address that carried a second "IPV6:" loses it on the way back.
  bool exact = !HasPrefixIgnoreCase(attrs.addr, "IPV6:");
  if (attrs.addr && attrs.addr->find(':') != std::string::npos &&
      XtextEncode(*attrs.addr).size() + 5 > 255) {
    exact = false;
  }
  if (exact) FUZZ_CHECK(Same(back, attrs));
  return 0;
}
