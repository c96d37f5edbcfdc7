// lib/smtp/forged_header_filter.h
//
// The frontend's streaming filter over the header section of incoming mail: it removes the
// fields no sender may supply --
//   * every X-Sluice-* field (our trace header X-Sluice-Filter and the hold mark
//     X-Sluice-Hold are written by our own filter stage; a sender's copy is a forgery),
//   * every Authentication-Results: field whose authserv-id is ours (RFC 8601 §5: "a border
//     MTA MUST delete ... any instance of this header field that claims, by virtue of its
//     authentication service identifier, to have been added within its trust boundary")
// -- as the content streams, whatever the chunk boundaries, folded fields included. Every
// other byte passes unchanged and in order; the body is never looked at.
//
// Memory: a field is held back only until its name decides it (a few dozen bytes), an
// Authentication-Results field until its authserv-id is read (after any comments). The
// amount held is bounded by max_pending_bytes (the header size limit): a field still
// undecided beyond it is removed, since a field whose authserv-id cannot be read within the
// bound cannot be trusted. A field that ends without any authserv-id claims none and passes.
//
// Lines end with CRLF only (a bare CR or LF is an ordinary byte here: the SMTP session
// rejects such content anyway). The header ends at the first empty line.
//
// Never: changes, reorders or invents a byte it passes; looks past the header's end; holds
// more than max_pending_bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace sluice::smtp {

class ForgedHeaderFilter {
 public:
  struct Options {
    std::string authserv_id;               // ours; compared ignoring case. Empty: A-R untouched
    size_t max_pending_bytes = 102400;     // header_size_limit_bytes
  };
  explicit ForgedHeaderFilter(Options options);

  // Appends to `out` what passes of `chunk`.
  void Feed(std::string_view chunk, std::string& out);
  // The content ended: appends what is still held back (a header that never ended).
  void Finish(std::string& out);

  uint64_t removed_sluice_fields() const { return removed_sluice_; }
  uint64_t removed_authentication_results() const { return removed_auth_results_; }
  bool in_body() const { return state_ == State::kBody; }

 private:
  enum class State {
    kLineStart,  // at the start of a header line
    kEndCr,      // a CR at the start of a line: the empty line that ends the header?
    kName,       // reading a field name (held in pending_)
    kNameWsp,    // white space after a full "Authentication-Results" name, before ':'
    kPassLine,   // passing the rest of a line
    kDropLine,   // dropping the rest of a line
    kAuthValue,  // an Authentication-Results value before its authserv-id (held)
    kAuthToken,  // inside the authserv-id token (held)
    kAuthQuoted, // inside a quoted authserv-id (held)
    kBody,       // past the header: everything passes
  };
  // What becomes of the current field's continuation lines.
  enum class Field { kNone, kPass, kDrop, kAuthPending };

  void Step(char c, std::string& out);
  void LineStart(char c, std::string& out);
  void NameByte(char c, std::string& out);
  void AuthByte(char c, std::string& out);
  // The pending Authentication-Results field is decided: ours (dropped) or not (passed).
  void DecideAuth(bool ours, std::string& out);
  // The pending Authentication-Results field goes, with the rest of its line.
  void RemoveAuth();
  // A pending Authentication-Results field ended at a line end: decided as it stands.
  void EndPendingAuth(std::string& out);
  bool Hold(char c);  // appends to pending_; false when the bound is reached
  void DropPending();
  void PassPending(std::string& out);

  Options o_;
  State state_ = State::kLineStart;
  Field field_ = Field::kNone;
  std::string pending_;    // held-back bytes of the current field
  std::string token_;      // the authserv-id read so far (unquoted)
  int comment_depth_ = 0;  // nesting of ( ) in CFWS before the authserv-id
  bool escaped_ = false;   // a backslash quoted-pair in a comment or quoted string
  bool cr_ = false;        // the previous byte of the current line was CR
  bool auth_quoted_ = false;  // a line end came inside a quoted authserv-id
  uint64_t removed_sluice_ = 0;
  uint64_t removed_auth_results_ = 0;
};

}  // namespace sluice::smtp
