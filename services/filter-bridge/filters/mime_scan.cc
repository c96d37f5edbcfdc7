// services/filter-bridge/filters/mime_scan.cc -- see mime_scan.h.
#include "services/filter-bridge/filters/mime_scan.h"

#include <gmime/gmime.h>

#include <algorithm>
#include <mutex>

namespace sluice::filter_bridge {
namespace {

void InitGmime() {
  static std::once_flag once;
  std::call_once(once, [] { g_mime_init(); });
}

std::string Lower(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return s;
}

class Scanner {
 public:
  Scanner(const MimeLimits& limits, MimeScan& out) : limits_(limits), out_(out) {}

  void Visit(GMimeObject* object, size_t depth) {
    if (object == nullptr) return;
    if (depth > limits_.max_depth || out_.parts.size() >= limits_.max_parts) {
      out_.truncated = true;
      return;
    }
    MimePart part;
    if (GMimeContentType* ct = g_mime_object_get_content_type(object)) {
      if (char* type = g_mime_content_type_get_mime_type(ct)) {
        part.content_type = Lower(type);
        g_free(type);
      }
    }
    if (GMIME_IS_PART(object)) {
      if (const char* name = g_mime_part_get_filename(GMIME_PART(object))) part.filename = name;
    }
    out_.parts.push_back(std::move(part));

    if (GMIME_IS_MULTIPART(object)) {
      GMimeMultipart* multipart = GMIME_MULTIPART(object);
      const int n = g_mime_multipart_get_count(multipart);
      for (int i = 0; i < n; ++i) Visit(g_mime_multipart_get_part(multipart, i), depth + 1);
    } else if (GMIME_IS_MESSAGE_PART(object)) {
      GMimeMessage* inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(object));
      if (inner != nullptr) Visit(g_mime_message_get_mime_part(inner), depth + 1);
    } else if (GMIME_IS_TEXT_PART(object)) {
      AddText(GMIME_TEXT_PART(object));
    }
  }

 private:
  void AddText(GMimeTextPart* part) {
    if (text_bytes_ >= limits_.max_text_bytes) {
      out_.truncated = true;
      return;
    }
    char* text = g_mime_text_part_get_text(part);
    if (text == nullptr) return;
    std::string_view all(text);
    if (all.size() > limits_.max_text_bytes - text_bytes_) {
      all = all.substr(0, limits_.max_text_bytes - text_bytes_);
      out_.truncated = true;
    }
    text_bytes_ += all.size();
    while (!all.empty()) {
      size_t nl = all.find('\n');
      std::string_view line = all.substr(0, nl);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      out_.text_lines.emplace_back(line);
      if (nl == std::string_view::npos) break;
      all.remove_prefix(nl + 1);
    }
    g_free(text);
  }

  const MimeLimits& limits_;
  MimeScan& out_;
  uint64_t text_bytes_ = 0;
};

MimeScan ScanStream(GMimeStream* stream, const MimeLimits& limits, bool truncated) {
  MimeScan scan;
  scan.truncated = truncated;
  g_mime_stream_seek(stream, 0, GMIME_STREAM_SEEK_SET);
  GMimeParser* parser = g_mime_parser_new_with_stream(stream);
  GMimeMessage* message = g_mime_parser_construct_message(parser, nullptr);
  if (message != nullptr) {
    Scanner scanner(limits, scan);
    scanner.Visit(g_mime_message_get_mime_part(message), 0);
    g_object_unref(message);
  }
  g_object_unref(parser);
  return scan;
}

}  // namespace

MimeScan ScanMimeBytes(std::string_view message, const MimeLimits& limits) {
  InitGmime();
  const bool truncated = message.size() > limits.max_message_bytes;
  message = message.substr(0, static_cast<size_t>(std::min<uint64_t>(message.size(), limits.max_message_bytes)));
  GMimeStream* stream = g_mime_stream_mem_new_with_buffer(message.data(), message.size());
  MimeScan scan = ScanStream(stream, limits, truncated);
  g_object_unref(stream);
  return scan;
}

absl::StatusOr<MimeScan> ScanMimeMessage(const MessageSpool& spool, const Edits& edits,
                                         const MimeLimits& limits) {
  InitGmime();
  GMimeStream* stream = g_mime_stream_mem_new();
  uint64_t written = 0;
  bool truncated = false;
  absl::Status s = WriteMessage(spool, edits, [&](std::string_view chunk) {
    const uint64_t room = limits.max_message_bytes - written;
    if (chunk.size() > room) {
      chunk = chunk.substr(0, static_cast<size_t>(room));
      truncated = true;
    }
    if (!chunk.empty() && g_mime_stream_write(stream, chunk.data(), chunk.size()) < 0) {
      return absl::InternalError("cannot buffer the message for the MIME parser");
    }
    written += chunk.size();
    // Enough: stop the writer (this status is not an error for the caller).
    if (truncated) return absl::CancelledError("mime parse bound reached");
    return absl::OkStatus();
  });
  if (!s.ok() && !(truncated && s.code() == absl::StatusCode::kCancelled)) {
    g_object_unref(stream);
    return s;
  }
  MimeScan scan = ScanStream(stream, limits, truncated);
  g_object_unref(stream);
  return scan;
}

}  // namespace sluice::filter_bridge
