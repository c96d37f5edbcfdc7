// lib/smtp/message_id_scanner.h
//
// Finds the Message-ID of a message as its content streams by (decoded DATA content, lines
// ending in CRLF, split at any byte), so every stage can log it beside the session and queue
// ids: one grep for a Message-ID then finds the message at each stage (docs/logging.md).
// Looks only at the header section (up to the first empty line); the first Message-ID
// field wins, unfolded, surrounding white space removed, at most kMaxBytes kept.
//
// Never: holds more than kMaxBytes plus one field name; looks past the end of the header.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace sluice::smtp {

class MessageIdScanner {
 public:
  // RFC 5322 §2.1.1: a line is at most 998 characters; a longer id is cut there.
  static constexpr size_t kMaxBytes = 998;

  void Feed(std::string_view chunk);
  // The content ended (a message that is all header may end inside its last field).
  void Finish() { EndOfField(); }
  // The Message-ID field's value ("<x@y>"), or "" when the header has none (yet).
  const std::string& message_id() const { return id_; }
  // The header section ended (nothing later can change message_id()).
  bool header_done() const { return state_ == State::kBody; }

 private:
  enum class State { kLineStart, kName, kValue, kSkipLine, kBody };
  void EndOfField();

  State state_ = State::kLineStart;
  std::string name_;       // the field name being read (bounded)
  std::string value_;      // the Message-ID value being read (bounded)
  bool in_message_id_ = false;  // the current field (with its folds) is Message-ID
  bool after_cr_ = false;  // the previous byte was CR
  bool empty_line_ = false;  // the line being skipped began with CR: maybe the header's end
  std::string id_;
};

}  // namespace sluice::smtp
