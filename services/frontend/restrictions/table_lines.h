// services/frontend/restrictions/table_lines.h
//
// The line format every restriction table shares, Postfix's source format for postmap:
// "KEY [VALUE...]" per line, the key up to the first space or tab, the value the rest with
// leading blanks removed; blank lines and lines whose first non-blank is "#" are skipped; a
// line starting with a blank continues the previous one (as in Postfix tables).
//
// Never: accepts a line it cannot place (the error names file and line).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "services/frontend/restrictions/table_files.h"

namespace sluice::frontend::restrictions {

struct TableLine {
  const std::string* path = nullptr;
  int number = 0;       // 1-based line number
  std::string key;
  std::string value;    // may be empty
  absl::Status Error(std::string_view what) const;  // "path:line: what"
};

// Calls `fn` for each entry of every file, in order; stops at the first error.
absl::Status ForEachTableLine(const std::vector<FileText>& files,
                              const std::function<absl::Status(const TableLine&)>& fn);

}  // namespace sluice::frontend::restrictions
