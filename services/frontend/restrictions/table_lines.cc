// services/frontend/restrictions/table_lines.cc -- see table_lines.h.
#include "services/frontend/restrictions/table_lines.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace sluice::frontend::restrictions {
namespace {

bool IsBlank(char c) { return c == ' ' || c == '\t'; }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (IsBlank(s.front()) || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (IsBlank(s.back()) || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

}  // namespace

absl::Status TableLine::Error(std::string_view what) const {
  return absl::InvalidArgumentError(absl::StrCat(*path, ":", number, ": ", std::string(what)));
}

absl::Status ForEachTableLine(const std::vector<FileText>& files,
                              const std::function<absl::Status(const TableLine&)>& fn) {
  for (const FileText& file : files) {
    // Join continuation lines first, remembering where each entry started.
    std::vector<std::pair<int, std::string>> entries;
    int number = 0;
    for (absl::string_view raw : absl::StrSplit(file.text, '\n')) {
      ++number;
      std::string_view line(raw.data(), raw.size());
      std::string_view trimmed = Trim(line);
      if (trimmed.empty() || trimmed.front() == '#') continue;
      if (IsBlank(line.front()) && !entries.empty()) {
        entries.back().second.append(" ").append(trimmed);
        continue;
      }
      entries.emplace_back(number, std::string(trimmed));
    }
    for (const auto& [n, text] : entries) {
      TableLine tl;
      tl.path = &file.path;
      tl.number = n;
      std::string_view t = text;
      size_t sp = 0;
      while (sp < t.size() && !IsBlank(t[sp])) ++sp;
      tl.key = std::string(t.substr(0, sp));
      tl.value = std::string(Trim(t.substr(sp)));
      absl::Status st = fn(tl);
      if (!st.ok()) return st;
    }
  }
  return absl::OkStatus();
}

}  // namespace sluice::frontend::restrictions
