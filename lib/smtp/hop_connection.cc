// lib/smtp/hop_connection.cc -- see hop_connection.h.
#include "lib/smtp/hop_connection.h"

#include "lib/smtp/command_group.h"

namespace sluice::smtp {

std::string_view ReuseLimitReached(const HopConnection& c, const sluice::v1::Limits& limits,
                                   HopConnection::Clock::time_point now) {
  if (now - c.idle_since >= std::chrono::seconds(limits.hop_connection_idle_limit_seconds())) {
    return "hop_connection_idle";
  }
  if (limits.hop_connection_reuse_count_limit() > 0 && c.transactions >= limits.hop_connection_reuse_count_limit()) {
    return "hop_connection_reuse_count";
  }
  if (now - c.opened_at >= std::chrono::seconds(limits.hop_connection_reuse_time_limit_seconds())) {
    return "hop_connection_reuse_time";
  }
  return "";
}

bool StaleConnection(const absl::Status& first) { return absl::IsUnavailable(first); }

bool StaleConnection(const absl::StatusOr<Reply>& first) {
  if (!first.ok()) return StaleConnection(first.status());
  return first->code == 421;
}

asio::awaitable<TransactionStart> StartTransaction(HopConnection& hop, std::vector<std::string> xforward,
                                                   const std::string& mail_line,
                                                   const std::vector<std::string>& rcpt_lines) {
  TransactionStart out;
  ++hop.transactions;
  const bool reused = hop.reused();
  std::vector<std::string> lines = std::move(xforward);
  if (!lines.empty()) hop.sent_xforward = true;
  const size_t mail = lines.size();
  lines.push_back(mail_line);
  lines.insert(lines.end(), rcpt_lines.begin(), rcpt_lines.end());

  CommandGroup group(*hop.client, std::move(lines));
  for (size_t i = 0; i < group.size(); ++i) {
    out.step = i < mail ? "xforward" : i == mail ? "mail" : "rcpt";
    absl::StatusOr<Reply> r = co_await group.Next();
    if (i == 0 && reused && StaleConnection(r)) {
      out.stale = true;
      co_return out;
    }
    if (!r.ok()) {
      out.error = r.status();
      co_return out;
    }
    bool fits = i < mail ? r->code == 250 : !r->intermediate() && r->code >= 200;
    if (!fits) {
      out.unexpected = *std::move(r);
      co_return out;
    }
    if (i < mail) continue;
    if (i > mail) {
      out.rcpts.push_back(*std::move(r));
      continue;
    }
    out.mail = *std::move(r);
    if (out.mail.positive()) continue;
    // MAIL refused: the recipients were refused too, each in its own reply when pipelined.
    if (hop.client->capabilities().pipelining) {
      for (size_t rest = i + 1; rest < group.size(); ++rest) {
        absl::StatusOr<Reply> skipped = co_await group.Next();
        if (!skipped.ok()) break;
      }
    }
    co_return out;
  }
  co_return out;
}

}  // namespace sluice::smtp
