// services/reinject/delivery/relay_agent.cc -- see relay_agent.h.
#include "services/reinject/delivery/relay_agent.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "asio/ip/address.hpp"
#include "asio/this_coro.hpp"
#include "lib/observe/log.h"
#include "lib/smtp/tls_context.h"
#include "services/reinject/delivery/relay_transaction.h"

namespace sluice::reinject {
namespace {

std::string StatusText(const absl::Status& st) { return std::string(st.message()); }

// The words for a failed exchange before the transaction, as Postfix logs them.
std::string SessionFailure(const absl::Status& st, const std::string& mta, std::string_view step) {
  std::string s(step);
  if (st.code() == absl::StatusCode::kDeadlineExceeded) {
    return absl::StrCat("451 4.4.2 conversation with ", mta, " timed out while ", s);
  }
  return absl::StrCat("451 4.4.2 lost connection with ", mta, " while ", s, ": ", StatusText(st));
}

std::string Refused(const smtp::Reply& reply, const std::string& mta, std::string_view step) {
  return absl::StrCat("451 4.4.2 host ", mta, " refused ", std::string(step), ": ", reply.ToString());
}

}  // namespace

absl::StatusOr<std::unique_ptr<RelayAgent>> RelayAgent::Create(RelayOptions options) {
  auto tls = smtp::MakeClientTlsContext(options.tls);
  if (!tls.ok()) return absl::InvalidArgumentError(absl::StrCat("delivery_tls: ", StatusText(tls.status())));
  return std::unique_ptr<RelayAgent>(new RelayAgent(std::move(options), *std::move(tls)));
}

RelayAgent::RelayAgent(RelayOptions options, std::unique_ptr<asio::ssl::context> tls)
    : options_(std::move(options)),
      tls_(std::move(tls)),
      name_(absl::StrCat(options_.lmtp ? "lmtp:" : "smtp:", options_.next_hop.ToString())),
      remote_mta_(options_.next_hop.host),
      cache_(options_.idle_timeout, ResolveQueueLimits(options_.limits).destination_concurrency) {}

std::string RelayAgent::Destination(const sluice::v1::QueueRecord&, int) const { return name_; }

asio::awaitable<absl::StatusOr<std::unique_ptr<RelayConnection>>> RelayAgent::Open(const QueueLimits& limits,
                                                                                    bool use_tls) {
  auto executor = co_await asio::this_coro::executor;
  smtp::ClientTimeouts timeouts;
  timeouts.connect = absl::ToChronoNanoseconds(limits.connect_timeout);
  // Each reply may take as long as the whole attempt may; the scheduler cuts the attempt
  // at delivery_timeout.
  timeouts.reply = absl::ToChronoNanoseconds(std::max(limits.connect_timeout, limits.delivery_timeout));
  timeouts.data_done = timeouts.reply;
  auto connection = std::make_unique<RelayConnection>();
  connection->executor = executor;
  connection->client = std::make_unique<smtp::SmtpClient>(executor, timeouts);
  smtp::SmtpClient& client = *connection->client;
  const std::string& mta = remote_mta_;

  // The greeting comes within connect_timeout too (Postfix smtp_helo_timeout aside).
  client.set_reply_timeout(timeouts.connect);
  auto greeting = co_await client.Connect(options_.next_hop);
  client.set_reply_timeout(timeouts.reply);
  if (!greeting.ok()) {
    co_return absl::UnavailableError(absl::StrCat("451 4.4.1 ", StatusText(greeting.status())));
  }
  if (greeting->code != 220) {
    // Postfix skips a 5xx greeting (smtp_skip_5xx_greeting) and, with no other host, defers.
    client.Close();
    co_return absl::UnavailableError(
        absl::StrCat("451 4.4.1 host ", mta, " refused to talk to me: ", greeting->ToString()));
  }
  auto hello = co_await client.Hello(options_.helo_name, options_.lmtp);
  if (!hello.ok()) co_return absl::UnavailableError(SessionFailure(hello.status(), mta, options_.lmtp ? "sending LHLO" : "sending EHLO"));
  if (hello->code != 250 && !options_.lmtp && hello->permanent()) {
    // An old server without ESMTP (RFC 5321 §3.2): HELO, and no extensions.
    hello = co_await client.Helo(options_.helo_name);
    if (!hello.ok()) co_return absl::UnavailableError(SessionFailure(hello.status(), mta, "sending HELO"));
  }
  if (hello->code != 250) {
    client.Close();
    co_return absl::UnavailableError(Refused(*hello, mta, options_.lmtp ? "LHLO" : "EHLO"));
  }

  if (use_tls && client.capabilities().starttls) {
    std::error_code not_ip;
    asio::ip::make_address(options_.next_hop.host, not_ip);
    std::string sni = not_ip ? options_.next_hop.host : std::string();  // RFC 6066 §3: names only
    auto started = co_await client.StartTls(*tls_, sni);
    if (!started.ok()) {
      const bool verify = !options_.tls.ca_file().empty();
      observe::Warn("relay_tls_failed")
          .Kv("relay", name_)
          .Kv("error", StatusText(started.status()))
          .Kv("fallback", verify ? "defer" : "plaintext");
      client.Close();
      if (verify) {
        co_return absl::UnavailableError(
            absl::StrCat("451 4.7.5 TLS with ", mta, " failed: ", StatusText(started.status())));
      }
      co_return co_await Open(limits, /*use_tls=*/false);
    }
    if (started->code == 220) {
      // RFC 3207 §4.2: forget what was announced in the clear and ask again.
      hello = co_await client.Hello(options_.helo_name, options_.lmtp);
      if (!hello.ok()) co_return absl::UnavailableError(SessionFailure(hello.status(), mta, "sending EHLO after STARTTLS"));
      if (hello->code != 250) {
        client.Close();
        co_return absl::UnavailableError(Refused(*hello, mta, "EHLO after STARTTLS"));
      }
    }
    // Any other reply to STARTTLS: opportunistic TLS carries on in plaintext.
  }
  opened_.fetch_add(1);
  observe::Info("relay_connected").Kv("relay", name_).Kv("tls", client.tls());
  co_return connection;
}

asio::awaitable<absl::StatusOr<std::unique_ptr<RelayConnection>>> RelayAgent::Acquire(const QueueLimits& limits) {
  auto executor = co_await asio::this_coro::executor;
  for (;;) {
    std::unique_ptr<RelayConnection> cached = cache_.Take(name_, executor);
    if (!cached) break;
    // RSET between messages: it also finds a connection the next hop has closed meanwhile.
    auto reset = co_await cached->client->Command("RSET");
    if (reset.ok() && reset->code == 250) co_return cached;
    cached->client->Close();
  }
  co_return co_await Open(limits, tls_ != nullptr);
}

asio::awaitable<std::vector<RecipientResult>> RelayAgent::Deliver(const sluice::v1::QueueRecord& record,
                                                                  const MessageContent& content,
                                                                  const std::vector<int>& recipient_indexes,
                                                                  EarlierAttempt) {
  const QueueLimits limits = ResolveQueueLimits(options_.limits);
  auto acquired = co_await Acquire(limits);
  if (!acquired.ok()) {
    std::vector<RecipientResult> results;
    for (int i : recipient_indexes) {
      RecipientResult r;
      r.index = i;
      r.outcome = DeliveryOutcome::kTransient;
      r.reply = StatusText(acquired.status());
      r.remote_mta = remote_mta_;
      results.push_back(std::move(r));
    }
    co_return results;
  }
  std::unique_ptr<RelayConnection> connection = *std::move(acquired);
  RelayTransactionInput input;
  input.record = &record;
  input.content = &content;
  input.temp_dir = options_.temp_dir;
  input.indexes = &recipient_indexes;
  input.lmtp = options_.lmtp;
  input.blocking = options_.blocking;
  input.remote_mta = remote_mta_;
  RelayTransactionOutcome outcome = co_await RunRelayTransaction(*connection->client, input);
  ++connection->messages;
  if (outcome.reusable && connection->client->connected() &&
      connection->messages < limits.delivery_connection_reuse_limit) {
    cache_.Put(name_, std::move(connection));
  } else {
    RelayConnectionCache::Retire(std::move(connection));
  }
  co_return std::move(outcome.results);
}

}  // namespace sluice::reinject
