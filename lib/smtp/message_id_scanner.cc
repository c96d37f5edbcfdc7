// lib/smtp/message_id_scanner.cc -- see message_id_scanner.h.
#include "lib/smtp/message_id_scanner.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"

namespace sluice::smtp {
namespace {

// Longer than any field name we look for: the rest of such a name is not read.
constexpr size_t kMaxNameBytes = 32;

}  // namespace

void MessageIdScanner::EndOfField() {
  if (in_message_id_ && id_.empty()) {
    id_ = std::string(absl::StripAsciiWhitespace(value_));
  }
  in_message_id_ = false;
  value_.clear();
}

void MessageIdScanner::Feed(std::string_view chunk) {
  for (size_t i = 0; i < chunk.size() && state_ != State::kBody; ++i) {
    const char c = chunk[i];
    const bool crlf_end = c == '\n' && after_cr_;
    after_cr_ = c == '\r';
    switch (state_) {
      case State::kLineStart:
        if (c == ' ' || c == '\t') {
          // A fold: the current field goes on (its value keeps one space for the line end).
          state_ = in_message_id_ ? State::kValue : State::kSkipLine;
          if (in_message_id_ && value_.size() < kMaxBytes) value_.push_back(' ');
          break;
        }
        EndOfField();
        if (c == '\r') {
          state_ = State::kSkipLine;  // the empty line ends the header at its LF
          empty_line_ = true;
          break;
        }
        name_.assign(1, c);
        state_ = State::kName;
        break;
      case State::kName:
        if (c == ':') {
          in_message_id_ = absl::EqualsIgnoreCase(absl::StripTrailingAsciiWhitespace(name_), "Message-ID");
          state_ = in_message_id_ ? State::kValue : State::kSkipLine;
        } else if (crlf_end) {
          state_ = State::kLineStart;  // a line without a colon: not a field
        } else if (name_.size() < kMaxNameBytes) {
          name_.push_back(c);
        } else {
          state_ = State::kSkipLine;
        }
        break;
      case State::kValue:
        if (crlf_end) {
          state_ = State::kLineStart;
        } else if (c != '\r' && c != '\n' && value_.size() < kMaxBytes) {
          value_.push_back(c);
        }
        break;
      case State::kSkipLine:
        if (crlf_end) {
          state_ = empty_line_ ? State::kBody : State::kLineStart;
        } else if (c != '\r') {
          empty_line_ = false;  // the line had more than a CR: not the empty line
        }
        break;
      case State::kBody:
        break;
    }
  }
  if (state_ == State::kBody) EndOfField();
}

}  // namespace sluice::smtp
