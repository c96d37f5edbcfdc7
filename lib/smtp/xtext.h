// lib/smtp/xtext.h
//
// xtext (RFC 3461 §4): "+XX" hex escapes for '+', '=', and characters outside 33..126.
// Used by DSN ENVID/ORCPT, AUTH= and XFORWARD attribute values.
//
// Never: decodes a malformed escape silently (it is an error).
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace sluice::smtp {

std::string XtextEncode(std::string_view raw);
absl::StatusOr<std::string> XtextDecode(std::string_view xtext);

}  // namespace sluice::smtp
