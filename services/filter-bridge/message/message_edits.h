// services/filter-bridge/message/message_edits.h
//
// What filters change in a message, kept apart from the spooled original: an ordered list of
// header edits (the operations milter, gRPC filters and rules need) and an optional
// replacement body. WriteMessage streams the result: the edited header, then the body. With
// no edits the original comes out byte for byte; with header edits only the edited fields
// change (every untouched field keeps its bytes).
//
// Header values are stored as the bytes after the colon ("raw value"): the usual single
// space and the text, folded with CRLF + white space. MakeRawValue() turns filter-supplied
// text into that form so no value can end the header or start a field of its own.
//
// Never: lets an edit inject a line that does not start with white space into the header;
// writes a field name that is not a valid field name.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "services/filter-bridge/message/header_section.h"
#include "services/filter-bridge/message/message_spool.h"

namespace sluice::filter_bridge {

struct HeaderEdit {
  enum class Op {
    kAdd,         // append at the end of the header
    kPrepend,     // insert at the top
    kInsert,      // insert before the field at `index` (0: top; past the end: append)
    kChange,      // replace the index-th field of that name (1: first; 0 counts as 1); none: append
    kDelete,      // remove the index-th field of that name (1: first; 0 counts as 1), if any
    kRemoveAll,   // remove every field of that name
    kReplaceAll,  // replace the first field of that name, remove the others; none: append
  };
  Op op = Op::kAdd;
  std::string name;
  std::string raw_value;  // bytes after the colon, CRLF-folded (see MakeRawValue)
  size_t index = 0;

  // Convenience constructors: `value` is text without the leading space; it is made safe with
  // MakeRawValue(value, /*leading_space=*/true).
  static HeaderEdit Add(std::string_view name, std::string_view value);
  static HeaderEdit Prepend(std::string_view name, std::string_view value);
  static HeaderEdit Insert(size_t index, std::string_view name, std::string_view value);
  static HeaderEdit Change(size_t occurrence, std::string_view name, std::string_view value);
  static HeaderEdit Delete(size_t occurrence, std::string_view name);
  static HeaderEdit RemoveAll(std::string_view name);
  static HeaderEdit ReplaceAll(std::string_view name, std::string_view value);

  bool operator==(const HeaderEdit&) const = default;
};

// Makes filter-supplied value text safe as a raw value: any line break (CRLF, bare LF as
// milters send folded values, bare CR) followed by white space becomes CRLF (a fold); one
// not followed by white space becomes a single space; trailing line breaks go; NUL becomes a
// space. With leading_space, a single space is put in front unless the value already starts
// with white space.
std::string MakeRawValue(std::string_view value, bool leading_space);

// Checks an edit: a valid field name, a raw value with no line that does not fold.
absl::Status ValidateHeaderEdit(const HeaderEdit& edit);

// Applies one edit to a field list.
void ApplyHeaderEdit(std::vector<HeaderField>& fields, const HeaderEdit& edit);

struct Edits {
  std::vector<HeaderEdit> headers;              // applied in order
  std::shared_ptr<const MessageSpool> body;     // replacement body (a body-only spool), or null

  bool empty() const { return headers.empty() && body == nullptr; }
};

// The header fields after the edits.
std::vector<HeaderField> EditedHeaders(const MessageSpool& spool, const Edits& edits);

// The size of the message WriteMessage would produce.
uint64_t EditedSize(const MessageSpool& spool, const Edits& edits);

// Streams the final message to sink in chunks (at most about 64 KiB each): the edited header,
// the separating empty line, then the (original or replacement) body. Stops at and returns
// the first error of the sink or of a spool read. The spool must be finished.
absl::Status WriteMessage(const MessageSpool& spool, const Edits& edits,
                          const std::function<absl::Status(std::string_view)>& sink);

}  // namespace sluice::filter_bridge
