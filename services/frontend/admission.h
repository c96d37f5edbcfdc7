// services/frontend/admission.h
//
// Who may open a session and how fast (Postfix master maxproc + anvil): the session limit
// (max_sessions), per-client concurrent connections (smtpd_client_connection_count_limit),
// and per-client connection, message and recipient rates per rate_time_unit (anvil's fixed
// windows), with exemptions by CIDR (smtpd_client_event_limit_exceptions). Limits are read
// live from the LimitsStore on every decision, so a change applies to the next connection.
//
// A client is its IPv4 address, or its IPv6 network of limits.ipv6_client_prefix_length
// bits (lib/net/client_key.h): the key of the local and of the shared counts.
//
// Never: counts a client by anything but its real address (after PROXY protocol); grows
// without bound (idle client entries are swept).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "asio/awaitable.hpp"
#include "sluice/v1/limits.pb.h"

namespace sluice::frontend {

enum class AdmitDecision { kAdmit, kMaxSessions, kPerClientConnections, kConnectionRate };

class SharedLimits;

class Admission {
 public:
  using Clock = std::chrono::steady_clock;

  // Held by an admitted session; gives the slot back on destruction.
  class Ticket {
   public:
    Ticket(Admission* a, std::string client, bool shared) : a_(a), client_(std::move(client)), shared_(shared) {}
    ~Ticket();
    Ticket(const Ticket&) = delete;
    Ticket& operator=(const Ticket&) = delete;
   private:
    Admission* a_;
    std::string client_;
    bool shared_;  // also counted in the shared counts
  };

  Admission() = default;

  // The counts every replica shares (FrontendConfig.shared_limits); null: this replica's own.
  void set_shared(SharedLimits* shared) { shared_ = shared; }

  // Decides for a new connection; on kAdmit `ticket` holds the slot. The session slot
  // (max_sessions) is this replica's; the per-client counts are shared when set_shared.
  asio::awaitable<AdmitDecision> Admit(const std::string& client, bool exempt, const sluice::v1::Limits& limits,
                                       std::unique_ptr<Ticket>& ticket);
  // One MAIL / one RCPT of a client: false when its rate is exceeded.
  asio::awaitable<bool> AllowMessage(const std::string& client, bool exempt, const sluice::v1::Limits& limits);
  asio::awaitable<bool> AllowRecipient(const std::string& client, bool exempt, const sluice::v1::Limits& limits);

  // The same decisions from this replica's own counts (without shared limits, or when Redis
  // does not answer).
  AdmitDecision AdmitLocally(const std::string& client, bool exempt, const sluice::v1::Limits& limits,
                             std::unique_ptr<Ticket>& ticket);
  bool AllowMessageLocally(const std::string& client, bool exempt, const sluice::v1::Limits& limits);
  bool AllowRecipientLocally(const std::string& client, bool exempt, const sluice::v1::Limits& limits);

  uint32_t sessions() const { return sessions_.load(std::memory_order_relaxed); }
  size_t tracked_clients() const;

  // For tests: a clock to use instead of steady_clock.
  void set_clock_for_test(std::function<Clock::time_point()> now) { now_ = std::move(now); }

 private:
  struct Window {
    Clock::time_point start{};
    uint32_t count = 0;
  };
  struct Client {
    uint32_t connections = 0;
    Window connect_rate, message_rate, recipient_rate;
  };
  // The key a client's address is counted under (client_key.h).
  static std::string Key(const std::string& address, const sluice::v1::Limits& limits);
  // Counts one event in a fixed window of `unit`; false when that makes it exceed `limit`.
  static bool Count(Window& w, uint32_t limit, Clock::duration unit, Clock::time_point now);
  bool AllowEvent(const std::string& client, bool exempt, uint32_t limit, uint32_t unit_seconds,
                  Window Client::*window);
  asio::awaitable<bool> AllowSharedEvent(const std::string& client, bool exempt, uint32_t limit,
                                         uint32_t unit_seconds, Window Client::*window, int rate);
  bool TakeSlot(const sluice::v1::Limits& limits);
  void GiveSlot() { sessions_.fetch_sub(1, std::memory_order_acq_rel); }
  // The local per-client decision for a connection holding a slot; `enforce` false: only
  // counts it (the shared counts decided).
  AdmitDecision CountConnection(const std::string& client, bool exempt, bool enforce, const sluice::v1::Limits& limits);
  void Release(const std::string& client, bool shared);
  void MaybeSweep(Clock::time_point now, Clock::duration unit);
  Clock::time_point Now() const { return now_ ? now_() : Clock::now(); }

  std::atomic<uint32_t> sessions_{0};
  mutable std::mutex mu_;
  absl::flat_hash_map<std::string, Client> clients_;
  Clock::time_point last_sweep_{};
  std::function<Clock::time_point()> now_;
  SharedLimits* shared_ = nullptr;
};

}  // namespace sluice::frontend
