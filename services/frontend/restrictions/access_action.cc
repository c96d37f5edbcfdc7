// services/frontend/restrictions/access_action.cc -- see access_action.h.
#include "services/frontend/restrictions/access_action.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace sluice::frontend::restrictions {
namespace {

bool IsBlank(char c) { return c == ' ' || c == '\t'; }

bool AllDigits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// "5.7.1 text" -> ("5.7.1", "text"); without an enhanced code the default is kept. The
// class digit always follows the reply code (Postfix smtpd_check_reject fixes it the same way).
void SplitEnhanced(int code, std::string_view def, std::string_view text, std::string& enhanced, std::string& rest) {
  size_t sp = text.find(' ');
  std::string_view first = text.substr(0, sp);
  if (smtp::IsEnhancedCode(first)) {
    enhanced = std::string(first);
    text = sp == std::string_view::npos ? std::string_view() : text.substr(sp + 1);
    while (!text.empty() && IsBlank(text.front())) text.remove_prefix(1);
  } else {
    enhanced = std::string(def);
  }
  enhanced[0] = static_cast<char>('0' + code / 100);
  rest = std::string(text);
}

Verdict Refusal(Action action, int code, std::string_view def_enhanced, std::string_view def_text,
                const AccessAction& a, std::string_view name, std::string_view what, std::string_view source) {
  std::string enhanced, text;
  SplitEnhanced(code, def_enhanced, a.text, enhanced, text);
  if (text.empty()) text = std::string(def_text);
  return Verdict::Refuse(action, smtp::replies::AccessRejected(code, enhanced, name, what, text), std::string(source));
}

}  // namespace

absl::StatusOr<AccessAction> ParseAccessAction(std::string_view value) {
  while (!value.empty() && IsBlank(value.front())) value.remove_prefix(1);
  size_t end = 0;
  while (end < value.size() && !IsBlank(value[end])) ++end;
  AccessAction a;
  a.word = std::string(value.substr(0, end));
  std::string_view rest = value.substr(end);
  while (!rest.empty() && IsBlank(rest.front())) rest.remove_prefix(1);
  while (!rest.empty() && (IsBlank(rest.back()) || rest.back() == '\r')) rest.remove_suffix(1);
  a.text = std::string(rest);
  const std::string w = absl::AsciiStrToUpper(a.word);
  using K = AccessAction::Kind;
  // All digits (the whole value, as Postfix's alldig) is OK: some out-of-band systems put
  // a time stamp there. "550 text" is a code with text.
  if (w == "OK" || w == "RELAY" || (AllDigits(w) && a.text.empty())) {
    a.kind = K::kOk;
  } else if (w == "DUNNO") {
    a.kind = K::kDunno;
  } else if (w == "REJECT") {
    a.kind = K::kReject;
  } else if (w == "DEFER") {
    a.kind = K::kDefer;
  } else if (w == "DEFER_IF_PERMIT") {
    a.kind = K::kDeferIfPermit;
  } else if (w == "DEFER_IF_REJECT") {
    a.kind = K::kDeferIfReject;
  } else if (w == "PREPEND") {
    // "PREPEND Name: value": a header line, nothing else.
    size_t colon = a.text.find(':');
    if (colon == std::string::npos || colon == 0 || a.text.find_first_of(" \t") < colon) {
      return absl::InvalidArgumentError(absl::StrCat("PREPEND needs \"Header-Name: value\", got \"", a.text, "\""));
    }
    a.kind = K::kPrepend;
  } else if (w == "HOLD") {
    a.kind = K::kHold;
  } else if (w == "DISCARD") {
    a.kind = K::kDiscard;
  } else if (w == "WARN") {
    a.kind = K::kWarn;
  } else if (w == "INFO") {
    a.kind = K::kInfo;
  } else if (w == "FILTER" || w == "REDIRECT" || w == "BCC") {
    a.kind = K::kUnsupported;
  } else if (w.size() == 3 && (w[0] == '4' || w[0] == '5') && AllDigits(w) && !a.text.empty()) {
    a.kind = K::kCode;
    a.code = std::stoi(w);
  } else {
    return absl::InvalidArgumentError(absl::StrCat("unknown action \"", a.word, "\""));
  }
  return a;
}

Verdict VerdictFor(const AccessAction& a, std::string_view name, std::string_view what, std::string_view source) {
  using K = AccessAction::Kind;
  Verdict v;
  v.detail = std::string(source);
  switch (a.kind) {
    case K::kOk: return Verdict::Ok(std::string(source));
    case K::kDunno: return v;
    case K::kReject: return Refusal(Action::kReject, 554, "5.7.1", "Access denied", a, name, what, source);
    case K::kDefer: return Refusal(Action::kDefer, 450, "4.7.1", "Access denied", a, name, what, source);
    case K::kDeferIfPermit:
      return Refusal(Action::kDeferIfPermit, 450, "4.7.1", "Service unavailable", a, name, what, source);
    case K::kDeferIfReject:
      return Refusal(Action::kDeferIfReject, 450, "4.7.1", "Service unavailable", a, name, what, source);
    case K::kCode:
      return Refusal(a.code >= 500 ? Action::kReject : Action::kDefer, a.code, a.code >= 500 ? "5.7.1" : "4.7.1",
                     "Access denied", a, name, what, source);
    case K::kPrepend: v.prepend.push_back(a.text); return v;
    case K::kHold:
      v.hold = a.text.empty() ? absl::StrCat("<", std::string(name), ">: ", std::string(what), " triggers HOLD action") : a.text;
      return v;
    case K::kDiscard:
      v.discard = true;
      v.detail = a.text.empty() ? absl::StrCat("<", std::string(name), ">: ", std::string(what), " triggers DISCARD action") : a.text;
      return v;
    case K::kWarn:
    case K::kInfo: v.warn = a.text; return v;
    case K::kUnsupported:
      v.warn = absl::StrCat("action ", a.word, " is not supported by sluice (ignored): ", a.text);
      return v;
  }
  return v;
}

}  // namespace sluice::frontend::restrictions
