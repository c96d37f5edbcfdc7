// services/reinject/delivery/relay_probe.cc
//
// RelayAgent::Probe: recipient verification over the delivery route, Postfix verify(8)'s
// probe without a message. A connection to the next hop as delivery gets it (a cached one
// after RSET, or a new one: connect, LHLO/EHLO, STARTTLS as configured), then
// MAIL FROM:<sender> and RCPT TO:<recipient>, then RSET, and the connection goes back to
// the cache for the next delivery or probe (QUIT when it is in no state to be reused).
// The RCPT reply decides: 2xx deliverable, 5xx undeliverable, 4xx deferred. Anything
// before it -- no connection, a refused MAIL, a lost connection -- says nothing about the
// address and is kFailed.
//
// Never: sends DATA; answers kUndeliverable for anything but a 5xx reply to RCPT.
#include "absl/strings/str_cat.h"
#include "services/reinject/delivery/relay_agent.h"

namespace sluice::reinject {
namespace {

ProbeResult Failed(std::string why) {
  ProbeResult r;
  r.answer = ProbeAnswer::kFailed;
  r.reply = std::move(why);
  return r;
}

ProbeResult FromRcptReply(const smtp::Reply& reply) {
  ProbeResult r;
  r.reply = reply.ToString();
  if (reply.code >= 200 && reply.code < 300) {
    r.answer = ProbeAnswer::kDeliverable;
  } else if (reply.permanent()) {
    r.answer = ProbeAnswer::kUndeliverable;
  } else if (reply.transient()) {
    r.answer = ProbeAnswer::kDeferred;
  } else {
    r.answer = ProbeAnswer::kFailed;  // 1xx/3xx to RCPT: a broken server, no answer
  }
  return r;
}

}  // namespace

asio::awaitable<ProbeResult> RelayAgent::Probe(const std::string& sender, const std::string& recipient) {
  const QueueLimits limits = ResolveQueueLimits(options_.limits);
  auto acquired = co_await Acquire(limits);
  if (!acquired.ok()) co_return Failed(std::string(acquired.status().message()));
  std::unique_ptr<RelayConnection> connection = *std::move(acquired);
  smtp::SmtpClient& client = *connection->client;

  std::string mail_line = absl::StrCat("MAIL FROM:<", sender, ">");
  auto mail = co_await client.Command(mail_line);
  if (!mail.ok()) co_return Failed(absl::StrCat("lost connection with ", remote_mta_, " while sending MAIL FROM: ",
                                                std::string(mail.status().message())));
  if (mail->code < 200 || mail->code >= 300) {
    // The next hop refuses the probe's sender (e.g. the null sender): nothing learned about
    // the recipient. Leave the connection in a known state.
    ProbeResult refused = Failed(absl::StrCat("host ", remote_mta_, " refused MAIL FROM:<", sender, ">: ", mail->ToString()));
    auto reset = co_await client.Command("RSET");
    if (reset.ok() && reset->code == 250) {
      cache_.Put(name_, std::move(connection));
    } else {
      RelayConnectionCache::Retire(std::move(connection));
    }
    co_return refused;
  }
  std::string rcpt_line = absl::StrCat("RCPT TO:<", recipient, ">");
  auto rcpt = co_await client.Command(rcpt_line);
  if (!rcpt.ok()) co_return Failed(absl::StrCat("lost connection with ", remote_mta_, " while sending RCPT TO: ",
                                                std::string(rcpt.status().message())));
  ProbeResult result = FromRcptReply(*rcpt);
  // RSET ends the transaction without a message (RFC 5321 §4.1.1.5); a clean connection
  // serves the next delivery or probe.
  auto reset = co_await client.Command("RSET");
  ++connection->messages;
  if (reset.ok() && reset->code == 250 && client.connected() &&
      connection->messages < limits.delivery_connection_reuse_limit) {
    cache_.Put(name_, std::move(connection));
  } else {
    RelayConnectionCache::Retire(std::move(connection));
  }
  co_return result;
}

}  // namespace sluice::reinject
