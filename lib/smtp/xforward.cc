// lib/smtp/xforward.cc -- see xforward.h.
//
// XFORWARD_README, "Note 1": a value is at most 255 characters (as sent, i.e. xtext) and,
// decoded, holds no control characters, non-ASCII characters or whitespace. "Note 3":
// [UNAVAILABLE] may come in any case. Postfix itself also sends [TEMPUNAVAIL] for a name
// whose lookup failed temporarily.
#include "lib/smtp/xforward.h"

#include "lib/smtp/xtext.h"

namespace sluice::smtp {
namespace {

constexpr size_t kMaxValue = 255;
constexpr size_t kMaxProto = 64;         // XFORWARD_README: PROTO up to 64 characters
constexpr size_t kMaxCommandBytes = 512; // RFC 5321 §4.5.3.1.4, including the CRLF
constexpr std::string_view kCommand = "XFORWARD";
constexpr std::string_view kIpv6Prefix = "IPV6:";

char Upper(char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c; }

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Upper(a[i]) != Upper(b[i])) return false;
  }
  return true;
}

// The attributes in the order they are sent, with where each lives in XforwardAttrs.
struct Attribute {
  std::string_view name;
  std::optional<std::string> XforwardAttrs::*field;
};

constexpr Attribute kAttributes[] = {
    {"NAME", &XforwardAttrs::name},   {"ADDR", &XforwardAttrs::addr},
    {"PORT", &XforwardAttrs::port},   {"PROTO", &XforwardAttrs::proto},
    {"HELO", &XforwardAttrs::helo},   {"IDENT", &XforwardAttrs::ident},
    {"SOURCE", &XforwardAttrs::source},
};

bool IsUnknownValue(std::string_view v) {
  return EqualsIgnoreCase(v, kXforwardUnavailable) || EqualsIgnoreCase(v, kXforwardTempUnavailable);
}

// The encoded value, cut to 255 characters without splitting a "+XX" escape.
std::string EncodeValue(std::string_view raw) {
  std::string encoded = XtextEncode(raw);
  if (encoded.size() > kMaxValue) {
    size_t cut = kMaxValue;
    if (encoded[cut - 1] == '+') {
      cut -= 1;
    } else if (cut >= 2 && encoded[cut - 2] == '+') {
      cut -= 2;
    }
    encoded.resize(cut);
  }
  return encoded;
}

absl::Status Bad(std::string_view name, std::string_view why) {
  return absl::InvalidArgumentError("Bad XFORWARD " + std::string(name) + " " + std::string(why));
}

// Checks a decoded value and normalizes it (unknown markers upper-cased, ADDR prefix off).
absl::Status CheckValue(std::string_view name, std::string& value) {
  if (value.empty()) return Bad(name, "value: empty");
  for (char ch : value) {
    const auto c = static_cast<unsigned char>(ch);
    if (c <= 32 || c >= 127) return Bad(name, "value: control, space or non-ASCII character");
  }
  if (IsUnknownValue(value)) {
    for (char& c : value) c = Upper(c);
    return absl::OkStatus();
  }
  if (name == "ADDR") {
    if (value.size() > kIpv6Prefix.size() &&
        EqualsIgnoreCase(std::string_view(value).substr(0, kIpv6Prefix.size()), kIpv6Prefix)) {
      value.erase(0, kIpv6Prefix.size());
    }
  } else if (name == "PORT") {
    if (value.size() > 5) return Bad(name, "value: not a port number");
    unsigned port = 0;
    for (char c : value) {
      if (c < '0' || c > '9') return Bad(name, "value: not a port number");
      port = port * 10 + static_cast<unsigned>(c - '0');
    }
    if (port > 65535) return Bad(name, "value: not a port number");
  } else if (name == "PROTO") {
    if (value.size() > kMaxProto) return Bad(name, "value: longer than 64 characters");
  } else if (name == "SOURCE") {
    if (!EqualsIgnoreCase(value, "LOCAL") && !EqualsIgnoreCase(value, "REMOTE")) {
      return Bad(name, "value: neither LOCAL nor REMOTE");
    }
    for (char& c : value) c = Upper(c);
  }
  return absl::OkStatus();
}

// What the client sends for a value: characters a server must refuse (Note 1) become '?',
// as Postfix's smtpd does on receipt, and a value still unacceptable (an empty one, a port
// that is no number) becomes [UNAVAILABLE], so a strange HELO never fails the transaction.
std::string SendableValue(std::string_view name, std::string_view value) {
  std::string out(value);
  for (char& ch : out) {
    const auto c = static_cast<unsigned char>(ch);
    if (c <= 32 || c >= 127) ch = '?';
  }
  std::string checked = out;
  if (!CheckValue(name, checked).ok()) return std::string(kXforwardUnavailable);
  if (IsUnknownValue(out)) return checked;  // upper-cased marker
  return out;
}

}  // namespace

std::vector<std::string> EncodeXforward(const XforwardAttrs& attrs,
                                        const std::vector<std::string>& announced) {
  std::vector<std::string> commands;
  std::string line;
  for (const Attribute& a : kAttributes) {
    const std::optional<std::string>& value = attrs.*a.field;
    if (!value) continue;
    bool is_announced = false;
    for (const std::string& n : announced) is_announced = is_announced || EqualsIgnoreCase(n, a.name);
    if (!is_announced) continue;

    std::string raw = SendableValue(a.name, *value);
    if (a.name == "ADDR" && !IsUnknownValue(raw) && raw.find(':') != std::string::npos &&
        !EqualsIgnoreCase(std::string_view(raw).substr(0, kIpv6Prefix.size()), kIpv6Prefix)) {
      raw.insert(0, kIpv6Prefix);  // Postfix's form for an IPv6 client address
    }
    std::string element(a.name);
    element.push_back('=');
    element.append(EncodeValue(raw));

    // Strictly below 512 bytes with the CRLF, so even a server that counts the limit
    // exclusively accepts it. One element always fits: 9 + 7 + 255 bytes.
    if (!line.empty() && line.size() + 1 + element.size() + 2 >= kMaxCommandBytes) {
      commands.push_back(std::move(line));
      line.clear();
    }
    if (line.empty()) line = kCommand;
    line.push_back(' ');
    line.append(element);
  }
  if (!line.empty()) commands.push_back(std::move(line));
  return commands;
}

absl::Status ParseXforward(std::string_view argument, XforwardAttrs& into) {
  // Parse everything first: a bad command changes nothing.
  XforwardAttrs parsed = into;
  bool any = false;
  while (true) {
    while (!argument.empty() && (argument.front() == ' ' || argument.front() == '\t')) {
      argument.remove_prefix(1);
    }
    if (argument.empty()) break;
    size_t end = 0;
    while (end < argument.size() && argument[end] != ' ' && argument[end] != '\t') ++end;
    const std::string_view element = argument.substr(0, end);
    argument.remove_prefix(end);

    const size_t eq = element.find('=');
    if (eq == std::string_view::npos || eq + 1 == element.size()) {
      return absl::InvalidArgumentError("XFORWARD: attribute=value expected");
    }
    const std::string_view name = element.substr(0, eq);
    const std::string_view encoded = element.substr(eq + 1);
    const Attribute* attr = nullptr;
    for (const Attribute& a : kAttributes) {
      if (EqualsIgnoreCase(a.name, name)) attr = &a;
    }
    if (attr == nullptr) {
      return absl::InvalidArgumentError("Bad XFORWARD attribute name: " + std::string(name));
    }
    if (encoded.size() > kMaxValue) return Bad(attr->name, "value: longer than 255 characters");
    absl::StatusOr<std::string> value = XtextDecode(encoded);
    if (!value.ok()) return Bad(attr->name, "value: bad xtext");
    absl::Status checked = CheckValue(attr->name, *value);
    if (!checked.ok()) return checked;
    parsed.*attr->field = *std::move(value);
    any = true;
  }
  if (!any) return absl::InvalidArgumentError("XFORWARD: attribute=value expected");
  into = std::move(parsed);
  return absl::OkStatus();
}

std::string_view XforwardAttributeList() { return "NAME ADDR PORT PROTO HELO IDENT SOURCE"; }

}  // namespace sluice::smtp
