// services/filter-bridge/filters/mime_scan.h
//
// What the rules need from a message's MIME structure, found by a real MIME parser (GMime 3):
// the content type and file name of every part (nested multiparts and attached messages
// included) and the decoded text (transfer encoding undone, charset converted to UTF-8) of
// every text part, as lines. Bounded: at most max_message_bytes of the message are parsed,
// at most max_parts parts visited, max_depth levels deep, max_text_bytes of text kept; what
// lies beyond is not seen (scan.truncated says so).
//
// Never: parses more than the bounds; keeps GMime objects beyond one call.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/status/status.h"
#include "services/filter-bridge/message/message_edits.h"
#include "services/filter-bridge/message/message_spool.h"

namespace sluice::filter_bridge {

struct MimeLimits {
  uint64_t max_message_bytes = 8 << 20;  // message bytes given to the parser
  size_t max_parts = 500;                // MIME parts visited
  size_t max_depth = 20;                 // nesting of multiparts and attached messages
  uint64_t max_text_bytes = 8 << 20;     // decoded text kept for body patterns
};

struct MimePart {
  std::string content_type;  // "type/subtype", lower case
  std::string filename;      // Content-Disposition filename or Content-Type name, decoded
};

struct MimeScan {
  std::vector<MimePart> parts;          // every part, containers included, in document order
  std::vector<std::string> text_lines;  // decoded lines of every text/* part (no line ends)
  bool truncated = false;               // a bound cut the scan short
};

// Scans raw message bytes.
MimeScan ScanMimeBytes(std::string_view message, const MimeLimits& limits);

// Scans the message as WriteMessage would produce it (edits applied), up to the bounds.
absl::StatusOr<MimeScan> ScanMimeMessage(const MessageSpool& spool, const Edits& edits,
                                         const MimeLimits& limits);

}  // namespace sluice::filter_bridge
