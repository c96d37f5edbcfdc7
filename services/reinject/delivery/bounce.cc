// services/reinject/delivery/bounce.cc -- see bounce.h.
#include "services/reinject/delivery/bounce.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "services/reinject/queue/proto_time.h"
#include "services/reinject/queue/queue_layout.h"

namespace sluice::reinject {
namespace {

constexpr char kCrlf[] = "\r\n";
constexpr size_t kMaxFieldText = 900;   // keeps every generated line under 998 bytes
constexpr size_t kMaxHeaderBytes = 1 << 20;

// Text safe inside one header line: no CR/LF/NUL, bounded.
std::string OneLine(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (out.size() >= kMaxFieldText) break;
    out.push_back(c == '\r' || c == '\n' || c == '\0' ? ' ' : c);
  }
  return out;
}

std::string Rfc5322Date(absl::Time t) {
  return absl::FormatTime("%a, %d %b %Y %H:%M:%S +0000", t, absl::UTCTimeZone());
}

std::string FromAddress(const BounceOptions& o) {
  if (o.bounce_from.find('@') != std::string::npos) return o.bounce_from;
  return absl::StrCat(o.bounce_from.empty() ? "MAILER-DAEMON" : o.bounce_from, "@", o.hostname);
}

// ORCPT as received is "addr-type;xtext-decoded address"; one without a type is rfc822.
std::string OriginalRecipientField(std::string_view orcpt) {
  size_t semi = orcpt.find(';');
  if (semi == std::string_view::npos) return absl::StrCat("rfc822; ", OneLine(orcpt));
  return absl::StrCat(OneLine(orcpt.substr(0, semi)), "; ", OneLine(orcpt.substr(semi + 1)));
}

struct Notify {
  bool never = false, success = false, failure = false;
};

// "SUCCESS,FAILURE" (any case, blanks tolerated) as flags.
Notify ParseNotify(std::string_view notify) {
  Notify n;
  for (absl::string_view word : absl::StrSplit(absl::string_view(notify.data(), notify.size()), ',')) {
    std::string w = absl::AsciiStrToUpper(absl::StripAsciiWhitespace(word));
    if (w == "NEVER") n.never = true;
    if (w == "SUCCESS") n.success = true;
    if (w == "FAILURE") n.failure = true;
  }
  return n;
}

// Reads the original message from its start, chunk by chunk.
class ContentReader {
 public:
  explicit ContentReader(const MessageContent& content) : content_(content) {}
  // Appends up to `max` bytes; 0 at the end.
  absl::StatusOr<size_t> Read(std::string& out, size_t max) {
    char buf[64 * 1024];
    auto n = content_.Read(pos_, buf, std::min(sizeof buf, max));
    if (!n.ok()) return n.status();
    out.append(buf, *n);
    pos_ += *n;
    return *n;
  }

 private:
  const MessageContent& content_;
  uint64_t pos_ = 0;
};

}  // namespace

std::string_view DsnActionName(DsnAction action) {
  switch (action) {
    case DsnAction::kFailed:
      return "failed";
    case DsnAction::kDelivered:
      return "delivered";
    case DsnAction::kRelayed:
      return "relayed";
  }
  return "failed";
}

bool WantsFailureReport(const sluice::v1::QueueRecord& original, const sluice::v1::QueueRecipient& recipient) {
  if (original.is_bounce() || original.sender().empty()) return false;
  if (recipient.notify().empty()) return true;  // RFC 3461 §4.1: default is FAILURE (and DELAY)
  Notify n = ParseNotify(recipient.notify());
  return n.failure && !n.never;
}

bool WantsSuccessReport(const sluice::v1::QueueRecord& original, const sluice::v1::QueueRecipient& recipient) {
  if (original.is_bounce() || original.sender().empty()) return false;
  Notify n = ParseNotify(recipient.notify());  // none: no success report (RFC 3461 §4.1)
  return n.success && !n.never;
}

std::string StatusOfReply(std::string_view reply, std::string_view fallback) {
  // "550 5.1.1 text" or "550-5.1.1 text"
  if (reply.size() >= 3 && (reply[0] == '2' || reply[0] == '4' || reply[0] == '5') && reply[1] >= '0' && reply[1] <= '9' &&
      reply[2] >= '0' && reply[2] <= '9') {
    std::string_view rest = reply.substr(3);
    if (!rest.empty() && (rest[0] == ' ' || rest[0] == '-')) rest.remove_prefix(1);
    size_t end = rest.find(' ');
    std::string_view code = rest.substr(0, end);
    // class.subject.detail: c is 2/4/5, subject 1-3 digits, detail 1-3 digits
    std::vector<std::string_view> parts;
    for (absl::string_view p : absl::StrSplit(absl::string_view(code.data(), code.size()), '.')) {
      parts.emplace_back(p.data(), p.size());
    }
    bool enhanced = parts.size() == 3 && parts[0].size() == 1 && parts[0][0] == reply[0];
    for (size_t i = 1; enhanced && i < 3; ++i) {
      enhanced = !parts[i].empty() && parts[i].size() <= 3 &&
                 parts[i].find_first_not_of("0123456789") == std::string_view::npos;
    }
    if (enhanced) return std::string(code);
    return absl::StrCat(std::string(1, reply[0]), ".0.0");
  }
  return std::string(fallback);
}

sluice::v1::QueueRecord ReportEnvelope(const sluice::v1::QueueRecord& original) {
  sluice::v1::QueueRecord r;
  r.set_sender("");
  auto* rcpt = r.add_recipients();
  rcpt->set_address(original.sender());
  rcpt->set_notify("NEVER");
  r.set_is_bounce(true);
  r.set_session_id(original.session_id());
  bool eight_bit = original.body_type() == "8BITMIME" || original.smtputf8();
  r.set_body_type(eight_bit ? "8BITMIME" : "7BIT");
  r.set_smtputf8(original.smtputf8());
  return r;
}

absl::Status WriteDeliveryReport(QueueWriter& writer, const sluice::v1::QueueRecord& original,
                                 const MessageContent& content, ReportKind kind,
                                 const std::vector<ReportedRecipient>& recipients, const BounceOptions& options,
                                 absl::Time now) {
  const bool failure = kind == ReportKind::kFailure;
  const std::string host = OneLine(options.hostname);
  const std::string boundary = absl::StrCat(original.queue_id(), ".", absl::ToUnixSeconds(now), "/", host);
  // RFC 3461 §4.3: the whole message only in a failure report that asked for it.
  const bool full = failure && absl::AsciiStrToUpper(original.ret()) == "FULL";
  const bool eight_bit = original.body_type() == "8BITMIME" || original.smtputf8();
  // Addresses and replies in our own text: one line, and ASCII unless the message is 8-bit.
  auto text = [eight_bit](std::string_view s) {
    std::string o = OneLine(s);
    if (!eight_bit) {
      for (char& c : o) {
        if (static_cast<unsigned char>(c) >= 0x80) c = '?';
      }
    }
    return o;
  };

  std::string out;
  absl::StrAppend(&out, "Date: ", Rfc5322Date(now), kCrlf);
  absl::StrAppend(&out, "From: Mail Delivery System <", OneLine(FromAddress(options)), ">", kCrlf);
  absl::StrAppend(&out, "To: <", text(original.sender()), ">", kCrlf);
  absl::StrAppend(
      &out, "Subject: ", failure ? "Undelivered Mail Returned to Sender" : "Successful Mail Delivery Report", kCrlf);
  absl::StrAppend(&out, "Message-ID: <", original.queue_id(), ".", absl::ToUnixSeconds(now),
                  failure ? ".bounce@" : ".success@", host, ">", kCrlf);
  absl::StrAppend(&out, "Auto-Submitted: auto-replied", kCrlf);  // RFC 3834 §5
  absl::StrAppend(&out, "MIME-Version: 1.0", kCrlf);
  absl::StrAppend(&out, "Content-Type: multipart/report; report-type=delivery-status;", kCrlf,
                  "\tboundary=\"", boundary, "\"", kCrlf);
  absl::StrAppend(&out, "Content-Transfer-Encoding: ", eight_bit ? "8bit" : "7bit", kCrlf, kCrlf);
  absl::StrAppend(&out, "This is a MIME-encapsulated message.", kCrlf, kCrlf);

  // 1. Human-readable part.
  absl::StrAppend(&out, "--", boundary, kCrlf);
  absl::StrAppend(&out, "Content-Description: Notification", kCrlf);
  absl::StrAppend(&out, "Content-Type: text/plain; charset=", eight_bit ? "utf-8" : "us-ascii", kCrlf);
  absl::StrAppend(&out, "Content-Transfer-Encoding: ", eight_bit ? "8bit" : "7bit", kCrlf, kCrlf);
  absl::StrAppend(&out, "This is the mail system at host ", host, ".", kCrlf, kCrlf);
  if (failure) {
    absl::StrAppend(&out, "Your message could not be delivered to one or more recipients.", kCrlf,
                    "The reasons are listed below; the technical report and the ",
                    full ? "returned message" : "headers of the returned message", kCrlf, "are attached.", kCrlf,
                    kCrlf);
  } else {
    absl::StrAppend(&out, "Your message was delivered to the recipients listed below, as you asked to", kCrlf,
                    "be told. A message that was relayed went to a system that sends no notice", kCrlf,
                    "of success; you may still hear of a failure further on. The technical", kCrlf,
                    "report and the headers of your message are attached.", kCrlf, kCrlf);
  }
  for (const ReportedRecipient& r : recipients) {
    absl::StrAppend(&out, "<", text(original.recipients(r.index).address()), ">: ");
    if (r.action == DsnAction::kRelayed && !r.remote_mta.empty()) {
      absl::StrAppend(&out, "relayed to ", text(r.remote_mta), ": ");
    }
    absl::StrAppend(&out, text(r.reply), kCrlf);
  }
  absl::StrAppend(&out, kCrlf);

  // 2. message/delivery-status (RFC 3464 §2.2, §2.3).
  absl::StrAppend(&out, "--", boundary, kCrlf);
  absl::StrAppend(&out, "Content-Description: Delivery report", kCrlf);
  absl::StrAppend(&out, "Content-Type: message/delivery-status", kCrlf, kCrlf);
  absl::StrAppend(&out, "Reporting-MTA: dns; ", host, kCrlf);
  absl::StrAppend(&out, "X-Sluice-Queue-ID: ", original.queue_id(), kCrlf);
  if (!original.envid().empty()) absl::StrAppend(&out, "Original-Envelope-Id: ", text(original.envid()), kCrlf);
  if (original.has_arrived_at()) {
    absl::StrAppend(&out, "Arrival-Date: ", Rfc5322Date(FromProtoTime(original.arrived_at())), kCrlf);
  }
  for (const ReportedRecipient& r : recipients) {
    const auto& rcpt = original.recipients(r.index);
    absl::StrAppend(&out, kCrlf);  // each per-recipient group follows an empty line
    if (!rcpt.orcpt().empty()) absl::StrAppend(&out, "Original-Recipient: ", OriginalRecipientField(rcpt.orcpt()), kCrlf);
    absl::StrAppend(&out, "Final-Recipient: rfc822; ", text(rcpt.address()), kCrlf);
    absl::StrAppend(&out, "Action: ", std::string(DsnActionName(r.action)), kCrlf);
    absl::StrAppend(&out, "Status: ", text(r.status), kCrlf);
    if (!r.remote_mta.empty()) absl::StrAppend(&out, "Remote-MTA: dns; ", text(r.remote_mta), kCrlf);
    if (!r.reply.empty()) {
      absl::StrAppend(&out, "Diagnostic-Code: ", r.diagnostic_type.empty() ? "X-Sluice" : OneLine(r.diagnostic_type),
                      "; ", text(r.reply), kCrlf);
    }
    absl::StrAppend(&out, "Last-Attempt-Date: ", Rfc5322Date(now), kCrlf);
  }
  absl::StrAppend(&out, kCrlf);

  // 3. The original, whole or its header block.
  const char* what = failure ? "Undelivered Message" : "Delivered Message";
  absl::StrAppend(&out, "--", boundary, kCrlf);
  if (full) {
    absl::StrAppend(&out, "Content-Description: ", what, kCrlf);
    absl::StrAppend(&out, "Content-Type: message/rfc822", kCrlf);
  } else {
    absl::StrAppend(&out, "Content-Description: ", what, " Headers", kCrlf);
    absl::StrAppend(&out, "Content-Type: text/rfc822-headers", kCrlf);
  }
  absl::StrAppend(&out, "Content-Transfer-Encoding: ", eight_bit ? "8bit" : "7bit", kCrlf, kCrlf);
  absl::Status s = writer.Append(out);
  if (!s.ok()) return s;

  ContentReader reader(content);
  std::string chunk;
  char last = '\n';
  if (full) {
    for (;;) {
      chunk.clear();
      auto n = reader.Read(chunk, 64 * 1024);
      if (!n.ok()) return n.status();
      if (*n == 0) break;
      last = chunk.back();
      s = writer.Append(chunk);
      if (!s.ok()) return s;
    }
  } else {
    std::string head;
    while (head.size() < kMaxHeaderBytes) {
      auto n = reader.Read(head, kMaxHeaderBytes - head.size());
      if (!n.ok()) return n.status();
      if (*n == 0 || head.find("\r\n\r\n") != std::string::npos || head.find("\n\n") != std::string::npos) break;
    }
    size_t crlf = head.find("\r\n\r\n"), lf = head.find("\n\n");
    size_t end = crlf != std::string::npos && (lf == std::string::npos || crlf < lf) ? crlf + 2
                 : lf != std::string::npos                                       ? lf + 1
                                                                                 : head.size();
    head.resize(end);
    if (!head.empty()) last = head.back();
    s = writer.Append(head);
    if (!s.ok()) return s;
  }
  std::string tail = last == '\n' ? "" : kCrlf;
  absl::StrAppend(&tail, kCrlf, "--", boundary, "--", kCrlf);
  return writer.Append(tail);
}

}  // namespace sluice::reinject
