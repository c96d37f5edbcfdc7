// services/filter-bridge/message/header_section.h
//
// The header section of one RFC 5322 message, split into fields exactly as received: each
// field keeps its bytes (name, optional white space, colon, value with its folding, final
// CRLF), so a message whose header nobody edits is written out byte for byte. Pure code,
// no I/O: the spool hands it the first bytes of the message.
//
// Where the header ends (RFC 5322 §2.1): at the empty line, or at the first line that is
// neither a field nor a continuation (then the body starts with that line and there is no
// separator), or where a bound is reached: like Postfix's header_size_limit, whatever lies
// beyond max_bytes or max_fields is treated as body, never dropped.
//
// Never: treats a bare LF or bare CR as a line end (only CRLF ends a line); reads past the
// bytes it was given.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::filter_bridge {

// One header field.
class HeaderField {
 public:
  HeaderField() = default;
  // From the bytes of a whole field (as parsed): `raw` includes the final CRLF when the
  // message had one; name_len is the length of the name, colon_pos the offset of ':'.
  HeaderField(std::string raw, size_t name_len, size_t colon_pos)
      : raw_(std::move(raw)), name_len_(name_len), colon_pos_(colon_pos) {}
  // A new field "name:raw_value\r\n"; raw_value is everything after the colon (normally a
  // leading space and the text) and must already be a safe, CRLF-folded value.
  static HeaderField Make(std::string_view name, std::string_view raw_value);

  // The field's bytes as they appear in the message, CRLF included.
  std::string_view raw() const { return raw_; }
  std::string_view name() const { return std::string_view(raw_).substr(0, name_len_); }
  // After the colon up to (not including) the final CRLF: leading white space and folding kept.
  std::string_view raw_value() const;
  // RFC 5322 §2.2.3 unfolding (every CRLF removed), leading and trailing white space trimmed.
  std::string UnfoldedValue() const;
  // True when the name equals `name` ignoring ASCII case.
  bool Is(std::string_view name) const;
  bool ends_with_crlf() const;

 private:
  std::string raw_;
  size_t name_len_ = 0;
  size_t colon_pos_ = 0;
};

struct HeaderLimits {
  size_t max_bytes = 1 << 20;  // header bytes parsed into fields; the rest is body
  size_t max_fields = 10000;   // fields parsed; the rest is body
};

struct HeaderSection {
  std::vector<HeaderField> fields;
  uint64_t end = 0;            // offset just past the last field
  uint64_t body_offset = 0;    // end, plus 2 when an empty line separates the body
  bool has_separator = false;  // an empty line (CRLF) ended the header
  bool truncated = false;      // a bound ended the header; the rest counts as body
};

// Parses the header at the start of `prefix`. `complete` says whether prefix is the whole
// message (otherwise a field running past its end counts as over the bound).
HeaderSection ParseHeaderSection(std::string_view prefix, bool complete, const HeaderLimits& limits);

// Is `name` a valid field name (RFC 5322 §3.6.8: printable US-ASCII except ':', 1+ chars)?
bool IsValidFieldName(std::string_view name);

// ASCII case-insensitive equality.
bool EqualsIgnoreCase(std::string_view a, std::string_view b);

// RFC 5322 §2.2.3 unfolding of a raw value (every CRLF removed), with leading and trailing
// white space trimmed.
std::string UnfoldValue(std::string_view raw_value);

}  // namespace sluice::filter_bridge
