// services/filter-bridge/message/header_section.cc -- see header_section.h.
#include "services/filter-bridge/message/header_section.h"

#include <algorithm>

namespace sluice::filter_bridge {
namespace {

bool IsWsp(char c) { return c == ' ' || c == '\t'; }

bool IsFieldNameChar(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u >= 33 && u <= 126 && c != ':';
}

char LowerAscii(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

// Offset of the CRLF ending the line that starts at `pos`, or npos.
size_t FindCrlf(std::string_view s, size_t pos) { return s.find("\r\n", pos); }

// When the line at `pos` starts a field, returns the name length and sets colon_pos
// (relative to pos); 0 otherwise. Obsolete syntax (RFC 5322 §4.5.3): white space may sit
// between the name and the colon.
size_t FieldStart(std::string_view line, size_t* colon_pos) {
  size_t i = 0;
  while (i < line.size() && IsFieldNameChar(line[i])) ++i;
  const size_t name_len = i;
  if (name_len == 0) return 0;
  while (i < line.size() && IsWsp(line[i])) ++i;
  if (i >= line.size() || line[i] != ':') return 0;
  *colon_pos = i;
  return name_len;
}

}  // namespace

HeaderField HeaderField::Make(std::string_view name, std::string_view raw_value) {
  std::string raw;
  raw.reserve(name.size() + 1 + raw_value.size() + 2);
  raw.append(name);
  raw.push_back(':');
  raw.append(raw_value);
  raw.append("\r\n");
  return HeaderField(std::move(raw), name.size(), name.size());
}

std::string_view HeaderField::raw_value() const {
  std::string_view v = std::string_view(raw_).substr(colon_pos_ + 1);
  if (v.size() >= 2 && v.substr(v.size() - 2) == "\r\n") v.remove_suffix(2);
  return v;
}

std::string HeaderField::UnfoldedValue() const { return UnfoldValue(raw_value()); }

bool HeaderField::Is(std::string_view name) const { return EqualsIgnoreCase(this->name(), name); }

bool HeaderField::ends_with_crlf() const {
  return raw_.size() >= 2 && raw_.compare(raw_.size() - 2, 2, "\r\n") == 0;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (LowerAscii(a[i]) != LowerAscii(b[i])) return false;
  }
  return true;
}

bool IsValidFieldName(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), IsFieldNameChar);
}

std::string UnfoldValue(std::string_view raw_value) {
  std::string out;
  out.reserve(raw_value.size());
  for (size_t i = 0; i < raw_value.size(); ++i) {
    if (raw_value[i] == '\r' && i + 1 < raw_value.size() && raw_value[i + 1] == '\n') {
      ++i;
      continue;
    }
    out.push_back(raw_value[i]);
  }
  size_t b = 0;
  while (b < out.size() && IsWsp(out[b])) ++b;
  size_t e = out.size();
  while (e > b && IsWsp(out[e - 1])) --e;
  return out.substr(b, e - b);
}

HeaderSection ParseHeaderSection(std::string_view prefix, bool complete, const HeaderLimits& limits) {
  HeaderSection section;
  size_t pos = 0;
  auto finish_at = [&](size_t end, bool separator) {
    section.end = end;
    section.has_separator = separator;
    section.body_offset = end + (separator ? 2 : 0);
  };
  for (;;) {
    if (pos >= prefix.size()) {
      // Header up to the end of what we were given: everything was fields (or nothing).
      finish_at(pos, false);
      return section;
    }
    std::string_view rest = prefix.substr(pos);
    if (rest.size() >= 2 && rest[0] == '\r' && rest[1] == '\n') {
      finish_at(pos, true);
      return section;
    }
    if (!complete && rest.size() < 2 && rest[0] == '\r') {
      // Cannot tell an empty line from a CR inside the prefix: over the bound.
      section.truncated = true;
      finish_at(pos, false);
      return section;
    }
    size_t colon_rel = 0;
    size_t eol = FindCrlf(prefix, pos);
    std::string_view first_line =
        prefix.substr(pos, (eol == std::string_view::npos ? prefix.size() : eol) - pos);
    const size_t name_len = FieldStart(first_line, &colon_rel);
    if (name_len == 0) {
      // Not a field: the body starts here, without an empty line before it.
      finish_at(pos, false);
      return section;
    }
    // The field runs over its continuation lines (those starting with WSP).
    size_t field_end;  // offset just past the field's final CRLF (or the prefix end)
    bool runs_off = false;
    for (;;) {
      if (eol == std::string_view::npos) {
        field_end = prefix.size();
        runs_off = !complete;
        break;
      }
      const size_t next = eol + 2;
      if (next >= prefix.size()) {
        field_end = next;
        // Whether the next line continues this field is unknown when more follows.
        runs_off = !complete;
        break;
      }
      if (!IsWsp(prefix[next])) {
        field_end = next;
        break;
      }
      eol = FindCrlf(prefix, next);
    }
    if (runs_off || field_end > limits.max_bytes || section.fields.size() >= limits.max_fields) {
      section.truncated = true;
      finish_at(pos, false);
      return section;
    }
    section.fields.emplace_back(std::string(prefix.substr(pos, field_end - pos)), name_len,
                                colon_rel);
    pos = field_end;
  }
}

}  // namespace sluice::filter_bridge
