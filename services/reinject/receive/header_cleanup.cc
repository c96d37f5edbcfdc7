// services/reinject/receive/header_cleanup.cc -- see header_cleanup.h.
#include "services/reinject/receive/header_cleanup.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"

namespace sluice::reinject {
namespace {

// A header field: its first line starts at `start`, continuation lines begin with WSP.
struct Field {
  std::string_view text;  // whole field with its CRLFs
  std::string_view name;
};

std::vector<Field> SplitFields(std::string_view header) {
  std::vector<Field> fields;
  size_t pos = 0;
  while (pos < header.size()) {
    size_t end = pos;
    // A field ends at a CRLF not followed by white space.
    for (;;) {
      size_t crlf = header.find("\r\n", end);
      if (crlf == std::string_view::npos) {
        end = header.size();
        break;
      }
      end = crlf + 2;
      if (end >= header.size() || (header[end] != ' ' && header[end] != '\t')) break;
    }
    std::string_view text = header.substr(pos, end - pos);
    size_t colon = text.find(':');
    std::string_view name = colon == std::string_view::npos ? std::string_view() : text.substr(0, colon);
    fields.push_back({text, name});
    pos = end;
  }
  return fields;
}

bool NameIs(std::string_view name, std::string_view want) {
  absl::string_view n(name.data(), name.size());
  n = absl::StripTrailingAsciiWhitespace(n);
  return absl::EqualsIgnoreCase(n, absl::string_view(want.data(), want.size()));
}

}  // namespace

void HeaderCleanup::JudgeHoldMark(std::string_view value) {
  if (o_.hold_key != nullptr) {
    auto reason = o_.hold_key->Verify(value, o_.sender);
    if (reason.ok()) {
      hold_ = true;
      hold_reason_ = *std::move(reason);
      return;
    }
    ++ignored_hold_marks_;
    ignored_reason_ = std::string(reason.status().message());
    return;
  }
  if (o_.hold_by_certificate) {
    hold_ = true;
    hold_reason_ = smtp::UnsignedHoldReason(value);
    return;
  }
  ++ignored_hold_marks_;
  ignored_reason_ = "no hold_mark_key_file, and the peer is not trusted by certificate";
}

void HeaderCleanup::EmitHeader(std::string_view header, bool has_separator, std::string& out) {
  bool have_message_id = false;
  bool have_date = false;
  out.append(o_.received);
  for (const Field& f : SplitFields(header)) {
    if (NameIs(f.name, smtp::kHoldMarkField)) {
      JudgeHoldMark(f.text.substr(f.name.size() + 1));
      continue;  // only our filter stage's verdict holds mail; the mark never reaches a mailbox
    }
    if (NameIs(f.name, "Received")) ++received_fields_;
    if (NameIs(f.name, "Message-ID")) have_message_id = true;
    if (NameIs(f.name, "Date")) have_date = true;
    out.append(f.text);
  }
  if (!header.empty() && !absl::EndsWith(absl::string_view(header.data(), header.size()), "\r\n")) {
    out.append("\r\n");  // a header cut off without its line end (no body): close the line
  }
  if (!have_message_id && !o_.message_id.empty()) {
    out.append("Message-ID: ").append(o_.message_id).append("\r\n");
    added_message_id_ = o_.message_id;
  }
  if (!have_date && !o_.date.empty()) out.append("Date: ").append(o_.date).append("\r\n");
  if (has_separator) out.append("\r\n");
}

void HeaderCleanup::Feed(std::string_view content, std::string& out) {
  if (header_done_) {
    out.append(content);
    return;
  }
  size_t old = header_.size();
  header_.append(content);
  // The header ends at the first empty line: CRLF CRLF, or a CRLF at the very start.
  size_t end;
  if (header_.size() >= 2 && header_.compare(0, 2, "\r\n") == 0) {
    end = 0;
  } else {
    size_t from = old >= 3 ? old - 3 : 0;
    size_t pos = header_.find("\r\n\r\n", from);
    if (pos == std::string::npos) return;
    end = pos + 2;
  }
  header_done_ = true;
  std::string_view all(header_);
  EmitHeader(all.substr(0, end), /*has_separator=*/true, out);
  out.append(all.substr(end + 2));
  header_.clear();
  header_.shrink_to_fit();
}

void HeaderCleanup::Finish(std::string& out) {
  if (header_done_) return;
  header_done_ = true;
  EmitHeader(header_, /*has_separator=*/false, out);
  header_.clear();
}

}  // namespace sluice::reinject
