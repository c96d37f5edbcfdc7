// services/filter-bridge/message/message_edits.cc -- see message_edits.h.
#include "services/filter-bridge/message/message_edits.h"

#include <algorithm>
#include <utility>

namespace sluice::filter_bridge {
namespace {

constexpr size_t kOutputChunkBytes = 65536;

bool IsWsp(char c) { return c == ' ' || c == '\t'; }

HeaderEdit MakeEdit(HeaderEdit::Op op, size_t index, std::string_view name,
                    std::string_view value) {
  HeaderEdit e;
  e.op = op;
  e.index = index;
  e.name = std::string(name);
  e.raw_value = MakeRawValue(value, /*leading_space=*/true);
  return e;
}

// Index in `fields` of the n-th (1-based; 0 counts as 1) field named `name`, or npos.
size_t FindOccurrence(const std::vector<HeaderField>& fields, std::string_view name, size_t n) {
  if (n == 0) n = 1;
  for (size_t i = 0; i < fields.size(); ++i) {
    if (fields[i].Is(name) && --n == 0) return i;
  }
  return std::string::npos;
}

// Buffers output into chunks for the sink.
class ChunkedWriter {
 public:
  explicit ChunkedWriter(const std::function<absl::Status(std::string_view)>& sink) : sink_(sink) {}
  absl::Status Write(std::string_view bytes) {
    if (buffer_.size() + bytes.size() > kOutputChunkBytes && !buffer_.empty()) {
      if (absl::Status s = Flush(); !s.ok()) return s;
    }
    if (bytes.size() >= kOutputChunkBytes) return sink_(bytes);
    buffer_.append(bytes);
    return absl::OkStatus();
  }
  absl::Status Flush() {
    if (buffer_.empty()) return absl::OkStatus();
    absl::Status s = sink_(buffer_);
    buffer_.clear();
    return s;
  }

 private:
  const std::function<absl::Status(std::string_view)>& sink_;
  std::string buffer_;
};

}  // namespace

HeaderEdit HeaderEdit::Add(std::string_view name, std::string_view value) {
  return MakeEdit(Op::kAdd, 0, name, value);
}
HeaderEdit HeaderEdit::Prepend(std::string_view name, std::string_view value) {
  return MakeEdit(Op::kPrepend, 0, name, value);
}
HeaderEdit HeaderEdit::Insert(size_t index, std::string_view name, std::string_view value) {
  return MakeEdit(Op::kInsert, index, name, value);
}
HeaderEdit HeaderEdit::Change(size_t occurrence, std::string_view name, std::string_view value) {
  return MakeEdit(Op::kChange, occurrence, name, value);
}
HeaderEdit HeaderEdit::Delete(size_t occurrence, std::string_view name) {
  HeaderEdit e = MakeEdit(Op::kDelete, occurrence, name, "");
  e.raw_value.clear();
  return e;
}
HeaderEdit HeaderEdit::RemoveAll(std::string_view name) {
  HeaderEdit e = MakeEdit(Op::kRemoveAll, 0, name, "");
  e.raw_value.clear();
  return e;
}
HeaderEdit HeaderEdit::ReplaceAll(std::string_view name, std::string_view value) {
  return MakeEdit(Op::kReplaceAll, 0, name, value);
}

std::string MakeRawValue(std::string_view value, bool leading_space) {
  std::string out;
  out.reserve(value.size() + 8);
  if (leading_space && (value.empty() || !IsWsp(value[0]))) out.push_back(' ');
  for (size_t i = 0; i < value.size(); ++i) {
    const char c = value[i];
    if (c == '\r' || c == '\n') {
      // One line break: CRLF, LF or CR.
      if (c == '\r' && i + 1 < value.size() && value[i + 1] == '\n') ++i;
      const bool folds = i + 1 < value.size() && IsWsp(value[i + 1]);
      const bool trailing = value.find_first_not_of("\r\n", i + 1) == std::string_view::npos;
      if (trailing) break;
      if (folds) {
        out.append("\r\n");
      } else {
        out.push_back(' ');
      }
      continue;
    }
    out.push_back(c == '\0' ? ' ' : c);
  }
  return out;
}

absl::Status ValidateHeaderEdit(const HeaderEdit& edit) {
  if (!IsValidFieldName(edit.name)) {
    return absl::InvalidArgumentError("invalid header field name \"" + edit.name + "\"");
  }
  const std::string& v = edit.raw_value;
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i] == '\0') return absl::InvalidArgumentError("NUL in header value of " + edit.name);
    if (v[i] == '\r' || v[i] == '\n') {
      const bool crlf = v[i] == '\r' && i + 1 < v.size() && v[i + 1] == '\n';
      if (!crlf || i + 2 >= v.size() || !IsWsp(v[i + 2])) {
        return absl::InvalidArgumentError("header value of " + edit.name +
                                          " has a line break that does not fold");
      }
      ++i;
    }
  }
  return absl::OkStatus();
}

void ApplyHeaderEdit(std::vector<HeaderField>& fields, const HeaderEdit& edit) {
  using Op = HeaderEdit::Op;
  switch (edit.op) {
    case Op::kAdd:
      fields.push_back(HeaderField::Make(edit.name, edit.raw_value));
      return;
    case Op::kPrepend:
      fields.insert(fields.begin(), HeaderField::Make(edit.name, edit.raw_value));
      return;
    case Op::kInsert: {
      const size_t at = std::min(edit.index, fields.size());
      fields.insert(fields.begin() + static_cast<std::ptrdiff_t>(at),
                    HeaderField::Make(edit.name, edit.raw_value));
      return;
    }
    case Op::kChange: {
      const size_t i = FindOccurrence(fields, edit.name, edit.index);
      // Sendmail and Postfix append when the field to change does not exist.
      if (i == std::string::npos) {
        fields.push_back(HeaderField::Make(edit.name, edit.raw_value));
      } else {
        fields[i] = HeaderField::Make(edit.name, edit.raw_value);
      }
      return;
    }
    case Op::kDelete: {
      const size_t i = FindOccurrence(fields, edit.name, edit.index);
      if (i != std::string::npos) fields.erase(fields.begin() + static_cast<std::ptrdiff_t>(i));
      return;
    }
    case Op::kRemoveAll:
      fields.erase(std::remove_if(fields.begin(), fields.end(),
                                  [&](const HeaderField& f) { return f.Is(edit.name); }),
                   fields.end());
      return;
    case Op::kReplaceAll: {
      const size_t first = FindOccurrence(fields, edit.name, 1);
      if (first == std::string::npos) {
        fields.push_back(HeaderField::Make(edit.name, edit.raw_value));
        return;
      }
      fields[first] = HeaderField::Make(edit.name, edit.raw_value);
      size_t out = first + 1;
      for (size_t i = first + 1; i < fields.size(); ++i) {
        if (fields[i].Is(edit.name)) continue;
        if (out != i) fields[out] = std::move(fields[i]);
        ++out;
      }
      fields.resize(out);
      return;
    }
  }
}

std::vector<HeaderField> EditedHeaders(const MessageSpool& spool, const Edits& edits) {
  std::vector<HeaderField> fields = spool.headers();
  for (const HeaderEdit& e : edits.headers) ApplyHeaderEdit(fields, e);
  return fields;
}

uint64_t EditedSize(const MessageSpool& spool, const Edits& edits) {
  if (edits.empty()) return spool.size();
  uint64_t n = 0;
  for (const HeaderField& f : EditedHeaders(spool, edits)) {
    n += f.raw().size() + (f.ends_with_crlf() ? 0 : 2);
  }
  if (edits.body != nullptr) return n + 2 + edits.body->size();
  return n + (spool.header_section().has_separator ? 2 : 0) + spool.body_size();
}

absl::Status WriteMessage(const MessageSpool& spool, const Edits& edits,
                          const std::function<absl::Status(std::string_view)>& sink) {
  if (!spool.finished()) return absl::FailedPreconditionError("WriteMessage: spool not finished");
  if (edits.empty()) {
    return spool.ForEachChunk(0, spool.size(), kOutputChunkBytes, sink);
  }
  ChunkedWriter out(sink);
  for (const HeaderField& f : EditedHeaders(spool, edits)) {
    if (absl::Status s = out.Write(f.raw()); !s.ok()) return s;
    // A last field without CRLF (content cut short) must not run into what follows it.
    if (!f.ends_with_crlf()) {
      if (absl::Status s = out.Write("\r\n"); !s.ok()) return s;
    }
  }
  const MessageSpool* body = edits.body != nullptr ? edits.body.get() : &spool;
  const uint64_t body_begin = edits.body != nullptr ? 0 : spool.body_offset();
  if (edits.body != nullptr || spool.header_section().has_separator) {
    if (absl::Status s = out.Write("\r\n"); !s.ok()) return s;
  }
  if (absl::Status s = out.Flush(); !s.ok()) return s;
  return body->ForEachChunk(body_begin, body->size(), kOutputChunkBytes, sink);
}

}  // namespace sluice::filter_bridge
