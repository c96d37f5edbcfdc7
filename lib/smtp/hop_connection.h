// lib/smtp/hop_connection.h
//
// A connection from one sluice stage to the next (frontend -> filter stage, filter-bridge ->
// next hop) that carries many transactions, with Postfix's connection-cache rules for when
// it may carry one more: idle no longer than hop_connection_idle_limit_seconds
// (smtp_connection_cache_time_limit, 2 s), used for no more than
// hop_connection_reuse_count_limit transactions (smtp_connection_reuse_count_limit, 0: no
// limit) and no longer than hop_connection_reuse_time_limit_seconds after it opened
// (smtp_connection_reuse_time_limit, 300 s). How a transaction starts on it (XFORWARD,
// MAIL, the first recipients: one CommandGroup; the owner says RSET right after a
// transaction that ended early, so a resting connection holds none open), and how to
// tell that the first exchange of a transaction on a reused connection failed only because
// the peer closed the connection while it sat idle, so that the transaction may start over
// on a new one.
//
// Never: lets a transaction start over once any of its commands was answered on the failed
// connection (the peer may have acted on it); judges a fresh connection's failure stale.
// pipelines to a peer that did not announce PIPELINING.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "asio/awaitable.hpp"
#include "lib/smtp/client_session.h"
#include "lib/smtp/reply.h"
#include "sluice/v1/limits.pb.h"

namespace sluice::smtp {

struct HopConnection {
  using Clock = std::chrono::steady_clock;

  explicit HopConnection(std::unique_ptr<SmtpClient> c)
      : client(std::move(c)), opened_at(Clock::now()), idle_since(opened_at) {}

  std::unique_ptr<SmtpClient> client;
  Clock::time_point opened_at;
  Clock::time_point idle_since;  // when its last transaction ended
  uint32_t transactions = 0;     // begun on it, the current one included
  // XFORWARD went over it. Postfix forgets XFORWARD at each transaction's end; a peer that
  // does not might apply it to a later transaction that sends none.
  bool sent_xforward = false;

  // Carried a transaction before the current one: a failure may only mean it went stale.
  bool reused() const { return transactions > 1; }
};

// The reuse limit that keeps `c` from carrying another transaction at `now`, by its name in
// the limit metrics ("hop_connection_idle", "hop_connection_reuse_count",
// "hop_connection_reuse_time"); empty when none does.
std::string_view ReuseLimitReached(const HopConnection& c, const sluice::v1::Limits& limits,
                                   HopConnection::Clock::time_point now);

// The first exchange of a transaction on a reused connection came back as the peer's end of
// an idle connection: the connection is gone (closed, reset), or the server said 421
// (RFC 5321 §3.8: it is closing the channel, e.g. its idle timeout).
bool StaleConnection(const absl::StatusOr<Reply>& first);
bool StaleConnection(const absl::Status& first);

// How starting a transaction on a connection went.
struct TransactionStart {
  // A reused connection turned out closed before anything was answered: start over on a
  // new one (nothing else below is set).
  bool stale = false;
  std::string_view step;            // where it failed: "xforward", "mail", "rcpt"
  absl::Status error;               // a failed exchange (the connection is then broken)
  std::optional<Reply> unexpected;  // a reply where none fits (2xx/3xx/non-250 XFORWARD…)
  Reply mail;                       // MAIL's reply; when it refused, no recipient was taken
  std::vector<Reply> rcpts;         // one reply per recipient line, when MAIL was taken
  bool failed() const { return stale || !error.ok() || unexpected.has_value(); }
};

// Starts a transaction on `hop`: `xforward` (whole XFORWARD lines, this transaction's
// client), `mail_line` and
// `rcpt_lines`, as one CommandGroup (one write when PIPELINING was announced). When MAIL is
// refused, the replies to pipelined recipients are still read, so the connection stays in
// step for the next transaction (a failure there breaks it).
asio::awaitable<TransactionStart> StartTransaction(HopConnection& hop, std::vector<std::string> xforward,
                                                   const std::string& mail_line,
                                                   const std::vector<std::string>& rcpt_lines);

}  // namespace sluice::smtp
