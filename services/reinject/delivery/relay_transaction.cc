// services/reinject/delivery/relay_transaction.cc -- see relay_transaction.h.
#include "services/reinject/delivery/relay_transaction.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "asio/cancellation_type.hpp"
#include "asio/this_coro.hpp"
#include "lib/smtp/xtext.h"
#include "services/reinject/delivery/blocking_call.h"
#include "services/reinject/delivery/mime_downgrade.h"

namespace sluice::reinject {
namespace {

constexpr size_t kChunkBytes = 64 * 1024;
// Commands per pipelined write (Postfix sizes its groups by the socket's send buffer).
constexpr size_t kPipelineGroup = 100;

bool NonAscii(std::string_view s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) >= 0x80) return true;
  }
  return false;
}

// A reply of the next hop as a recipient's result.
RecipientResult FromReply(int index, const smtp::Reply& reply, const std::string& remote_mta, SuccessNotice success) {
  RecipientResult r;
  r.index = index;
  r.outcome = OutcomeOfReply(reply);
  r.reply = reply.ToString();
  r.diagnostic_type = "smtp";
  r.remote_mta = remote_mta;
  r.success = success;
  if (reply.code < 200 || (reply.code >= 300 && reply.code < 400)) {
    // A positive-intermediate or odd reply where a final one belongs: the peer is confused.
    r.reply = absl::StrCat("451 4.5.0 unexpected reply from ", remote_mta, ": ", reply.ToString());
    r.diagnostic_type = "X-Sluice";
  }
  return r;
}

// Our own words (connection trouble, local trouble) as a recipient's result.
RecipientResult OwnResult(int index, DeliveryOutcome outcome, std::string text, const std::string& remote_mta) {
  RecipientResult r;
  r.index = index;
  r.outcome = outcome;
  r.reply = std::move(text);
  r.remote_mta = remote_mta;
  return r;
}

// Postfix's wording for a failed exchange: "lost connection with X while sending RCPT TO".
std::string LostText(const absl::Status& st, const std::string& remote_mta, std::string_view step) {
  std::string s(step);
  if (st.code() == absl::StatusCode::kDeadlineExceeded) {
    return absl::StrCat("451 4.4.2 conversation with ", remote_mta, " timed out while ", s);
  }
  if (st.code() == absl::StatusCode::kInternal) {
    return absl::StrCat("451 4.5.0 protocol error with ", remote_mta, " while ", s, ": ", std::string(st.message()));
  }
  return absl::StrCat("451 4.4.2 lost connection with ", remote_mta, " while ", s, ": ", std::string(st.message()));
}

// Ends a transaction that did not reach the content: RSET leaves the connection ready for
// the next MAIL. True when it is (a server that said 421 is closing: no RSET then).
asio::awaitable<bool> ResetForReuse(smtp::SmtpClient& client, bool closing) {
  if (!closing) {
    auto r = co_await client.Command("RSET");
    if (r.ok() && r->code == 250) co_return true;
  }
  client.Close();
  co_return false;
}

asio::awaitable<bool> Cancelled() {
  asio::cancellation_state cs = co_await asio::this_coro::cancellation_state;
  co_return cs.cancelled() != asio::cancellation_type::none;
}

// Collects one result per recipient of the transaction.
class Decisions {
 public:
  Decisions(const std::vector<int>& indexes, std::string remote_mta, SuccessNotice success)
      : indexes_(indexes),
        remote_mta_(std::move(remote_mta)),
        success_(success),
        results_(indexes.size()),
        decided_(indexes.size()) {}

  void Reply(size_t pos, const smtp::Reply& reply) { Set(pos, FromReply(indexes_[pos], reply, remote_mta_, success_)); }
  void Own(size_t pos, DeliveryOutcome outcome, const std::string& text) {
    Set(pos, OwnResult(indexes_[pos], outcome, text, remote_mta_));
  }
  // Every recipient not yet decided (or, with `only`, those listed).
  void RestReply(const smtp::Reply& reply, const std::vector<size_t>* only = nullptr) {
    ForRest(only, [&](size_t pos) { Reply(pos, reply); });
  }
  void RestOwn(DeliveryOutcome outcome, const std::string& text, const std::vector<size_t>* only = nullptr) {
    ForRest(only, [&](size_t pos) { Own(pos, outcome, text); });
  }
  RelayTransactionOutcome Done(bool reusable) {
    RestOwn(DeliveryOutcome::kTransient, "451 4.3.0 no result from the relay transaction");
    return RelayTransactionOutcome{std::move(results_), reusable};
  }

 private:
  void Set(size_t pos, RecipientResult r) {
    if (decided_[pos]) return;
    decided_[pos] = true;
    results_[pos] = std::move(r);
  }
  template <typename F>
  void ForRest(const std::vector<size_t>* only, F f) {
    if (only != nullptr) {
      for (size_t pos : *only) f(pos);
    } else {
      for (size_t pos = 0; pos < results_.size(); ++pos) f(pos);
    }
  }

  const std::vector<int>& indexes_;
  std::string remote_mta_;
  SuccessNotice success_;
  std::vector<RecipientResult> results_;
  std::vector<bool> decided_;
};

}  // namespace

DeliveryOutcome OutcomeOfReply(const smtp::Reply& reply) {
  if (reply.code >= 200 && reply.code < 300) return DeliveryOutcome::kDelivered;
  if (reply.code >= 500 && reply.code < 600) return DeliveryOutcome::kPermanent;
  return DeliveryOutcome::kTransient;  // 4xx, and anything a confused peer says
}

std::string RelayMailCommand(const sluice::v1::QueueRecord& record, const smtp::Capabilities& caps,
                             std::optional<uint64_t> size_bytes) {
  std::string line = absl::StrCat("MAIL FROM:<", record.sender(), ">");
  if (caps.size) absl::StrAppend(&line, " SIZE=", size_bytes.value_or(record.size_bytes()));
  if (caps.eightbitmime && (record.body_type() == "7BIT" || record.body_type() == "8BITMIME")) {
    absl::StrAppend(&line, " BODY=", record.body_type());
  }
  if (caps.smtputf8 && record.smtputf8()) absl::StrAppend(&line, " SMTPUTF8");
  if (caps.dsn) {
    if (record.ret() == "FULL" || record.ret() == "HDRS") absl::StrAppend(&line, " RET=", record.ret());
    if (!record.envid().empty()) absl::StrAppend(&line, " ENVID=", smtp::XtextEncode(record.envid()));
  }
  return line;
}

std::string RelayRcptCommand(const sluice::v1::QueueRecipient& recipient, const smtp::Capabilities& caps) {
  std::string line = absl::StrCat("RCPT TO:<", recipient.address(), ">");
  if (caps.dsn) {
    if (!recipient.notify().empty()) absl::StrAppend(&line, " NOTIFY=", recipient.notify());
    // Stored as "addr-type;decoded address"; on the wire the address is xtext (RFC 3461 §4.2).
    size_t semi = recipient.orcpt().find(';');
    if (semi != std::string::npos && semi > 0) {
      absl::StrAppend(&line, " ORCPT=", recipient.orcpt().substr(0, semi), ";",
                      smtp::XtextEncode(std::string_view(recipient.orcpt()).substr(semi + 1)));
    }
  }
  return line;
}

std::string RelayRefusal(const sluice::v1::QueueRecord& record, const std::vector<int>& indexes,
                         const smtp::Capabilities& caps, const std::string& remote_mta) {
  if (caps.size && caps.size_limit > 0 && record.size_bytes() > caps.size_limit) {
    return absl::StrCat("552 5.3.4 message size ", record.size_bytes(), " exceeds size limit ", caps.size_limit,
                        " of server ", remote_mta);
  }
  if (record.smtputf8() && !caps.smtputf8) {
    // RFC 6531 §3.2: without the extension a UTF-8 envelope cannot be relayed; an ASCII
    // envelope can (the flag alone does not make the message need it).
    bool needs = NonAscii(record.sender());
    for (int i : indexes) needs = needs || NonAscii(record.recipients(i).address());
    if (needs) return absl::StrCat("550 5.6.7 SMTPUTF8 is required, but was not offered by host ", remote_mta);
  }
  return "";
}

bool NeedsDowngrade(const sluice::v1::QueueRecord& record, const smtp::Capabilities& caps) {
  return !caps.eightbitmime && (record.body_type() == "8BITMIME" || record.smtputf8());
}

SuccessNotice SuccessNoticeFor(const smtp::Capabilities& caps, bool lmtp) {
  if (caps.dsn) return SuccessNotice::kPassedOn;
  return lmtp ? SuccessNotice::kDelivered : SuccessNotice::kRelayed;
}

std::string DowngradeRefusal(const sluice::v1::QueueRecord& record, const Downgrade& downgrade,
                             const std::string& remote_mta) {
  if (record.smtputf8() && downgrade.in_header) {
    // RFC 6531 §3.2: UTF-8 header fields need SMTPUTF8 all the way.
    return absl::StrCat("550 5.6.7 SMTPUTF8 is required, but was not offered by host ", remote_mta);
  }
  return absl::StrCat("554 5.6.3 Conversion required but not supported: ", downgrade.reason, "; host ", remote_mta,
                      " does not offer 8BITMIME");
}

asio::awaitable<RelayTransactionOutcome> RunRelayTransaction(smtp::SmtpClient& client,
                                                             const RelayTransactionInput& input) {
  const sluice::v1::QueueRecord& record = *input.record;
  const std::vector<int>& indexes = *input.indexes;
  const std::string& mta = input.remote_mta;
  const smtp::Capabilities& caps = client.capabilities();
  Decisions d(indexes, mta, SuccessNoticeFor(caps, input.lmtp));

  if (std::string refusal = RelayRefusal(record, indexes, caps, mta); !refusal.empty()) {
    d.RestOwn(DeliveryOutcome::kPermanent, refusal);
    co_return d.Done(/*reusable=*/true);  // nothing was sent
  }

  // ---- 8-bit content for a next hop without 8BITMIME: a 7-bit copy, or a bounce ----
  // What is streamed after DATA: the 7-bit copy, else the queue content.
  std::optional<MessageContent> converted;
  std::optional<uint64_t> content_size;
  if (NeedsDowngrade(record, caps)) {
    const MessageContent& original = *input.content;
    const std::string& temp_dir = input.temp_dir;
    auto convert = [&original, &temp_dir] { return DowngradeTo7Bit(original, temp_dir); };
    auto downgraded = co_await RunBlocking(input.blocking, convert);
    if (!downgraded.ok()) {
      d.RestOwn(DeliveryOutcome::kTransient, absl::StrCat("451 4.3.0 converting the message to 7 bit failed: ",
                                                          std::string(downgraded.status().message())));
      co_return d.Done(/*reusable=*/true);
    }
    if (downgraded->outcome == DowngradeOutcome::kImpossible) {
      d.RestOwn(DeliveryOutcome::kPermanent, DowngradeRefusal(record, *downgraded, mta));
      co_return d.Done(/*reusable=*/true);
    }
    if (downgraded->outcome == DowngradeOutcome::kConverted) {
      if (caps.size && caps.size_limit > 0 && downgraded->size_bytes > caps.size_limit) {
        d.RestOwn(DeliveryOutcome::kPermanent,
                  absl::StrCat("552 5.3.4 message size ", downgraded->size_bytes,
                               " (converted to 7 bit) exceeds size limit ", caps.size_limit, " of server ", mta));
        co_return d.Done(/*reusable=*/true);
      }
      content_size = downgraded->size_bytes;
      converted.emplace(std::make_shared<SharedFd>(downgraded->copy.release()), 0, downgraded->size_bytes);
    }
  }

  // Answers a failed exchange: every open recipient transient, the connection unusable.
  auto lost = [&](const absl::Status& st, std::string_view step) {
    d.RestOwn(DeliveryOutcome::kTransient, LostText(st, mta, step));
    client.Close();
    return d.Done(/*reusable=*/false);
  };

  // ---- MAIL and RCPT: pipelined when the next hop offers it (RFC 2920), else in turn ----
  std::string mail_line = RelayMailCommand(record, caps, content_size);
  std::vector<std::string> rcpt_lines;
  for (int i : indexes) rcpt_lines.push_back(RelayRcptCommand(record.recipients(i), caps));
  std::optional<smtp::Reply> mail_reply;
  std::vector<smtp::Reply> rcpt_replies;
  bool closing = false;  // the next hop said 421: it closes the session
  if (caps.pipelining) {
    // In groups, each group's replies read before the next is sent: a long recipient list
    // in one write could fill both directions' socket buffers while neither side reads.
    size_t next = 0;
    do {
      const size_t begin = next;
      if (!mail_reply) client.Queue(mail_line);
      for (; next < rcpt_lines.size() && next - begin < kPipelineGroup; ++next) client.Queue(rcpt_lines[next]);
      absl::Status sent = co_await client.SendQueued();
      if (!sent.ok()) co_return lost(sent, mail_reply ? "sending RCPT TO" : "sending MAIL FROM");
      if (!mail_reply) {
        auto r = co_await client.ReadReply();
        if (!r.ok()) co_return lost(r.status(), "sending MAIL FROM");
        mail_reply = *std::move(r);
      }
      for (size_t pos = begin; pos < next; ++pos) {
        auto rr = co_await client.ReadReply();
        if (!rr.ok()) co_return lost(rr.status(), "sending RCPT TO");
        rcpt_replies.push_back(*std::move(rr));
        if (rcpt_replies.back().code == 421) closing = true;
      }
    } while (next < rcpt_lines.size() && mail_reply->code / 100 == 2 && !closing);
  } else {
    auto r = co_await client.Command(mail_line);
    if (!r.ok()) co_return lost(r.status(), "sending MAIL FROM");
    mail_reply = *std::move(r);
    if (mail_reply->code / 100 == 2) {
      for (const std::string& line : rcpt_lines) {
        auto rr = co_await client.Command(line);
        if (!rr.ok()) co_return lost(rr.status(), "sending RCPT TO");
        rcpt_replies.push_back(*std::move(rr));
        if (rcpt_replies.back().code == 421) break;  // the server is closing: the others would fail anyway
      }
    }
  }
  closing = closing || mail_reply->code == 421;
  for (const smtp::Reply& r : rcpt_replies) closing = closing || r.code == 421;

  if (mail_reply->code < 200 || mail_reply->code >= 300) {
    d.RestReply(*mail_reply);
    bool reusable = co_await ResetForReuse(client, closing);
    co_return d.Done(reusable);
  }
  std::vector<size_t> accepted;  // positions in `indexes`, in RCPT order
  for (size_t pos = 0; pos < indexes.size(); ++pos) {
    if (pos >= rcpt_replies.size()) {
      d.Own(pos, DeliveryOutcome::kTransient,
            absl::StrCat("451 4.4.2 ", mta, " closed the session before RCPT TO"));
      continue;
    }
    if (rcpt_replies[pos].code >= 200 && rcpt_replies[pos].code < 300) {
      accepted.push_back(pos);
    } else {
      d.Reply(pos, rcpt_replies[pos]);
    }
  }
  if (accepted.empty() || closing) {
    d.RestOwn(DeliveryOutcome::kTransient, absl::StrCat("451 4.4.2 ", mta, " is closing the session"), &accepted);
    bool reusable = co_await ResetForReuse(client, closing);
    co_return d.Done(reusable);
  }

  // ---- DATA and the content ----
  auto data = co_await client.Command("DATA");
  if (!data.ok()) co_return lost(data.status(), "sending DATA");
  if (data->code != 354) {
    closing = data->code == 421;
    d.RestReply(*data, &accepted);
    bool reusable = co_await ResetForReuse(client, closing);
    co_return d.Done(reusable);
  }
  std::string local_failure;
  const MessageContent& source = converted ? *converted : *input.content;
  std::string chunk;
  uint64_t offset = 0;
  while (local_failure.empty()) {
    chunk.resize(kChunkBytes);
    auto read_chunk = [&source, &chunk, offset] { return source.Read(offset, chunk.data(), chunk.size()); };
    absl::StatusOr<size_t> n = co_await RunBlocking(input.blocking, read_chunk);
    if (!n.ok()) {
      local_failure = absl::StrCat("read queue content: ", std::string(n.status().message()));
      break;
    }
    if (*n == 0) break;
    offset += *n;
    absl::Status sent = co_await client.SendContent(std::string_view(chunk.data(), *n));
    if (!sent.ok()) co_return lost(sent, "sending message body");
    if (co_await Cancelled()) co_return lost(absl::CancelledError("cancelled"), "sending message body");
  }
  if (!local_failure.empty()) {
    // No "." after a partial copy: dropping the connection makes the next hop discard it.
    client.Close();
    d.RestOwn(DeliveryOutcome::kTransient, absl::StrCat("451 4.3.0 ", local_failure), &accepted);
    co_return d.Done(false);
  }

  // ---- the final reply: one (SMTP), or one per accepted recipient in RCPT order (LMTP) ----
  if (!input.lmtp) {
    auto done = co_await client.FinishContent();
    if (!done.ok()) co_return lost(done.status(), "sending end of data -- message may be sent more than once");
    d.RestReply(*done, &accepted);
    co_return d.Done(done->code != 421 && client.connected());
  }
  auto first = co_await client.FinishContentLmtp(1);
  if (!first.ok()) co_return lost(first.status(), "sending end of data -- message may be sent more than once");
  d.Reply(accepted[0], (*first)[0]);
  bool reusable = (*first)[0].code != 421;
  for (size_t k = 1; k < accepted.size(); ++k) {
    // Read one by one: a reply already read keeps its result when a later one is lost.
    auto r = co_await client.ReadReply(client.timeouts().data_done);
    if (!r.ok()) co_return lost(r.status(), "receiving the LMTP replies -- message may be sent more than once");
    d.Reply(accepted[k], *r);
    reusable = reusable && r->code != 421;
  }
  co_return d.Done(reusable && client.connected());
}

}  // namespace sluice::reinject
