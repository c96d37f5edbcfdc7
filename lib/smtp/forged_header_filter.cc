// lib/smtp/forged_header_filter.cc -- see forged_header_filter.h.
#include "lib/smtp/forged_header_filter.h"

namespace sluice::smtp {
namespace {

constexpr std::string_view kSluicePrefix = "x-sluice-";
constexpr std::string_view kAuthResults = "authentication-results";

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

// `s` (as typed) is a prefix of `lower_name`, ignoring case.
bool IsPrefixIgnoreCase(std::string_view s, std::string_view lower_name) {
  if (s.size() > lower_name.size()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (Lower(s[i]) != lower_name[i]) return false;
  }
  return true;
}

bool IsWsp(char c) { return c == ' ' || c == '\t'; }

}  // namespace

ForgedHeaderFilter::ForgedHeaderFilter(Options options) : o_(std::move(options)) {}

void ForgedHeaderFilter::Feed(std::string_view chunk, std::string& out) {
  size_t i = 0;
  while (i < chunk.size()) {
    if (state_ == State::kBody) {
      out.append(chunk.substr(i));
      return;
    }
    if ((state_ == State::kPassLine || state_ == State::kDropLine) && !cr_) {
      // The middle of a line: up to the next CR in one step.
      size_t cr = chunk.find('\r', i);
      size_t end = cr == std::string_view::npos ? chunk.size() : cr;
      if (state_ == State::kPassLine) out.append(chunk.substr(i, end - i));
      if (end == i) {
        Step(chunk[i], out);
        ++i;
      } else {
        i = end;
      }
      continue;
    }
    Step(chunk[i], out);
    ++i;
  }
}

void ForgedHeaderFilter::Finish(std::string& out) {
  switch (state_) {
    case State::kEndCr:
      out.push_back('\r');
      break;
    case State::kName:
    case State::kNameWsp:
      PassPending(out);
      break;
    case State::kAuthToken:
    case State::kAuthQuoted:
      DecideAuth(!token_.empty() && EqualsIgnoreCase(token_, o_.authserv_id), out);
      break;
    case State::kAuthValue:
      PassPending(out);
      break;
    case State::kLineStart:
      if (field_ == Field::kAuthPending) EndPendingAuth(out);
      break;
    default:
      break;
  }
  pending_.clear();
  state_ = State::kBody;
}

void ForgedHeaderFilter::Step(char c, std::string& out) {
  switch (state_) {
    case State::kBody:
      out.push_back(c);
      return;
    case State::kLineStart:
      LineStart(c, out);
      return;
    case State::kEndCr:
      if (c == '\n') {
        out.append("\r\n");  // the empty line: the header ends here
        state_ = State::kBody;
        return;
      }
      // A line starting with a bare CR: not a field, passed as it is.
      out.push_back('\r');
      field_ = Field::kPass;
      state_ = State::kPassLine;
      cr_ = true;
      Step(c, out);
      return;
    case State::kName:
    case State::kNameWsp:
      NameByte(c, out);
      return;
    case State::kPassLine:
    case State::kDropLine:
      if (state_ == State::kPassLine) out.push_back(c);
      if (cr_ && c == '\n') {
        state_ = State::kLineStart;
        cr_ = false;
      } else {
        cr_ = c == '\r';
      }
      return;
    case State::kAuthValue:
    case State::kAuthToken:
    case State::kAuthQuoted:
      AuthByte(c, out);
      return;
  }
}

void ForgedHeaderFilter::LineStart(char c, std::string& out) {
  cr_ = false;
  if (field_ == Field::kAuthPending) {
    // A CRLF inside an Authentication-Results value still being read.
    if (IsWsp(c)) {  // folded: the value goes on
      if (!Hold(c)) {
        RemoveAuth();
        return;
      }
      if (auth_quoted_) {
        token_.push_back(c);  // unfolding keeps the white space (escaped or not)
        escaped_ = false;
      }
      state_ = auth_quoted_ ? State::kAuthQuoted : State::kAuthValue;
      return;
    }
    // The field ended before its authserv-id did: an unclosed quoted one is read as it
    // stands; otherwise it named none and claims nothing.
    EndPendingAuth(out);
  }
  if (IsWsp(c)) {
    // A continuation line belongs to the field above it.
    if (field_ == Field::kDrop) {
      state_ = State::kDropLine;
    } else {
      out.push_back(c);
      state_ = State::kPassLine;
    }
    return;
  }
  field_ = Field::kNone;
  if (c == '\r') {
    state_ = State::kEndCr;
    return;
  }
  pending_.clear();
  state_ = State::kName;
  NameByte(c, out);
}

void ForgedHeaderFilter::NameByte(char c, std::string& out) {
  const bool auth_wanted = !o_.authserv_id.empty();
  if (state_ == State::kName && c != ':' && !IsWsp(c)) {
    pending_.push_back(c);
    if (pending_.size() == kSluicePrefix.size() && IsPrefixIgnoreCase(pending_, kSluicePrefix)) {
      // X-Sluice-*: ours alone to write. The whole field goes, continuation lines too.
      pending_.clear();
      removed_sluice_++;
      field_ = Field::kDrop;
      state_ = State::kDropLine;
      cr_ = false;
      return;
    }
    if (IsPrefixIgnoreCase(pending_, kSluicePrefix) ||
        (auth_wanted && IsPrefixIgnoreCase(pending_, kAuthResults))) {
      return;  // still undecided
    }
  } else if (c == ':' && auth_wanted && pending_.size() >= kAuthResults.size() &&
             EqualsIgnoreCase(pending_.substr(0, kAuthResults.size()), kAuthResults) &&
             (state_ == State::kNameWsp || pending_.size() == kAuthResults.size())) {
    // Authentication-Results: held until its authserv-id is read.
    if (!Hold(c)) {
      RemoveAuth();
      return;
    }
    field_ = Field::kAuthPending;
    state_ = State::kAuthValue;
    token_.clear();
    comment_depth_ = 0;
    escaped_ = false;
    auth_quoted_ = false;
    return;
  } else if (IsWsp(c) && auth_wanted &&
             (state_ == State::kNameWsp || EqualsIgnoreCase(pending_, kAuthResults))) {
    // "Authentication-Results :" (obsolete syntax, RFC 5322 §4.5.3) is the same field.
    if (!Hold(c)) {
      RemoveAuth();
      return;
    }
    state_ = State::kNameWsp;
    return;
  } else {
    pending_.push_back(c);
  }
  // Not a field we remove: what was held passes, and so does the rest of the line.
  PassPending(out);
  field_ = Field::kPass;
  state_ = State::kPassLine;
  cr_ = c == '\r';
}

void ForgedHeaderFilter::AuthByte(char c, std::string& out) {
  if (!Hold(c)) {
    // Undecided within the bound: an authserv-id we cannot read is not trusted.
    RemoveAuth();
    if (cr_ && c == '\n') {
      state_ = State::kLineStart;
      cr_ = false;
    } else {
      cr_ = c == '\r';
    }
    return;
  }
  if (cr_ && c == '\n') {
    // A line end inside the value: the next line decides whether the field goes on.
    cr_ = false;
    auth_quoted_ = state_ == State::kAuthQuoted;
    state_ = State::kLineStart;
    return;
  }
  cr_ = c == '\r';
  switch (state_) {
    case State::kAuthValue:
      if (escaped_) {
        escaped_ = false;
      } else if (comment_depth_ > 0) {
        if (c == '\\') escaped_ = true;
        if (c == '(') ++comment_depth_;
        if (c == ')') --comment_depth_;
      } else if (c == '(') {
        comment_depth_ = 1;
      } else if (c == '"') {
        token_.clear();
        state_ = State::kAuthQuoted;
      } else if (c == ';') {
        DecideAuth(false, out);  // no authserv-id at all: it claims none
      } else if (!IsWsp(c) && c != '\r' && c != '\n') {
        token_.assign(1, c);
        state_ = State::kAuthToken;
      }
      return;
    case State::kAuthToken:
      if (IsWsp(c) || c == ';' || c == '(' || c == '\r' || c == '\n') {
        DecideAuth(EqualsIgnoreCase(token_, o_.authserv_id), out);
      } else {
        token_.push_back(c);
      }
      return;
    case State::kAuthQuoted:
      if (c == '\r') return;  // a fold inside the quotes: CRLF is not part of the value
      if (escaped_) {
        token_.push_back(c);
        escaped_ = false;
      } else if (c == '\\') {
        escaped_ = true;
      } else if (c == '"') {
        DecideAuth(EqualsIgnoreCase(token_, o_.authserv_id), out);
      } else {
        token_.push_back(c);
      }
      return;
    default:
      return;
  }
}

void ForgedHeaderFilter::DecideAuth(bool ours, std::string& out) {
  if (ours) {
    RemoveAuth();
  } else {
    PassPending(out);
    field_ = Field::kPass;
    state_ = State::kPassLine;
  }
  token_.clear();
}

void ForgedHeaderFilter::RemoveAuth() {
  DropPending();
  removed_auth_results_++;
  field_ = Field::kDrop;
  state_ = State::kDropLine;
}

void ForgedHeaderFilter::EndPendingAuth(std::string& out) {
  if (auth_quoted_ && EqualsIgnoreCase(token_, o_.authserv_id)) {
    DropPending();
    removed_auth_results_++;
  } else {
    PassPending(out);
  }
  token_.clear();
  field_ = Field::kNone;
}

bool ForgedHeaderFilter::Hold(char c) {
  if (pending_.size() >= o_.max_pending_bytes) return false;
  pending_.push_back(c);
  return true;
}

void ForgedHeaderFilter::DropPending() { pending_.clear(); }

void ForgedHeaderFilter::PassPending(std::string& out) {
  out.append(pending_);
  pending_.clear();
}

}  // namespace sluice::smtp
