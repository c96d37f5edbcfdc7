// services/reinject/delivery/relay_agent.h
//
// Delivery to a next hop over SMTP or LMTP (--deliver=smtp:HOST:PORT / lmtp:HOST:PORT), what
// Postfix's smtp(8) and lmtp(8) do for a relayhost: a connection is opened (connect_timeout
// for TCP and the greeting), greeted with EHLO (HELO when EHLO is refused) or LHLO, upgraded
// with STARTTLS when the next hop offers it (opportunistic, RFC 7435; after the handshake
// EHLO again), and one transaction per Deliver call runs on it (relay_transaction.h). Clean
// connections are reused for later messages (relay_connection_cache.h, RSET before each
// reuse) up to delivery_connection_reuse_limit messages. Every recipient of a message goes
// to the same next hop, so a message is one Deliver call and one transaction.
//
// TLS: without delivery_tls.ca_file the certificate is not checked (Postfix "may"), and a
// failed handshake is retried once in plaintext; with a CA file the peer must verify, and a
// failed handshake defers instead (falling back would defeat the CA).
//
// Failures to connect, greet or say EHLO/LHLO are transient for every recipient (4.4.1 /
// 4.4.2, Postfix's words); the next hop's own replies decide everything else.
//
// Never: relays to anywhere but the configured next hop; turns a connection problem into a
// permanent failure; keeps a connection whose protocol state is unknown.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "asio/any_io_executor.hpp"
#include "asio/ssl/context.hpp"
#include "lib/net/host_port.h"
#include "services/reinject/delivery/delivery_agent.h"
#include "services/reinject/delivery/relay_connection_cache.h"
#include "services/reinject/queue/queue_limits.h"
#include "sluice/v1/config.pb.h"

namespace sluice::reinject {

struct RelayOptions {
  bool lmtp = false;
  net::HostPort next_hop;
  std::string helo_name;               // EHLO/LHLO (delivery_ehlo, default $myhostname)
  LimitsSource limits;                 // timeouts, reuse limit, destination_concurrency
  sluice::v1::TlsConfig tls;           // delivery_tls
  asio::any_io_executor blocking;      // queue content reads, the 8BITMIME downgrade
  std::string temp_dir = "/var/tmp";   // where the downgrade's unnamed 7-bit copy lives
  absl::Duration idle_timeout = absl::Seconds(2);  // smtp_connection_cache_time_limit
};

class RelayAgent final : public DeliveryAgent {
 public:
  // INVALID_ARGUMENT when the TLS settings cannot be loaded.
  static absl::StatusOr<std::unique_ptr<RelayAgent>> Create(RelayOptions options);

  std::string_view name() const override { return name_; }
  std::string Destination(const sluice::v1::QueueRecord& record, int recipient_index) const override;
  asio::awaitable<std::vector<RecipientResult>> Deliver(const sluice::v1::QueueRecord& record,
                                                        const MessageContent& content,
                                                        const std::vector<int>& recipient_indexes,
                                                        EarlierAttempt earlier = EarlierAttempt::kNone) override;
  // MAIL FROM, RCPT TO and RSET on a (cached) connection (relay_probe.cc).
  asio::awaitable<ProbeResult> Probe(const std::string& sender, const std::string& recipient) override;

  // For tests and metrics: connections opened so far, and idle in the cache now.
  uint64_t connections_opened() const { return opened_.load(); }
  size_t connections_idle() const { return cache_.idle(); }

 private:
  RelayAgent(RelayOptions options, std::unique_ptr<asio::ssl::context> tls);

  // A new greeted connection (after STARTTLS when offered); on failure the message is the
  // whole transient reply text for the recipients.
  asio::awaitable<absl::StatusOr<std::unique_ptr<RelayConnection>>> Open(const QueueLimits& limits, bool use_tls);
  // A cached connection that answers RSET, else a new one.
  asio::awaitable<absl::StatusOr<std::unique_ptr<RelayConnection>>> Acquire(const QueueLimits& limits);

  RelayOptions options_;
  std::unique_ptr<asio::ssl::context> tls_;
  std::string name_;         // "smtp:HOST:PORT"
  std::string remote_mta_;   // HOST, for Remote-MTA and texts
  RelayConnectionCache cache_;
  std::atomic<uint64_t> opened_{0};
};

}  // namespace sluice::reinject
