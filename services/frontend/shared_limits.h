// services/frontend/shared_limits.h
//
// Per-client counts shared by every frontend replica that names the same Redis
// (FrontendConfig.shared_limits), as Haraka's limit plugin and rspamd's ratelimit keep
// theirs: the concurrent connections of a client address, summed over the replicas, and its
// connection, message and recipient rates in anvil's fixed windows (a window starts at the
// first event and lasts rate_time_unit_seconds). Each decision is one Lua script, so a check
// and its count are one atomic step across replicas.
//
// Keys (one Redis, or one primary; not Redis Cluster -- a script reads every replica's key):
//   sluice:limits:replicas              SET of replica ids that hold connections
//   sluice:limits:conn:<replica>        HASH client -> connections this replica holds; it
//                                       expires shared_limits_lease_seconds after the last
//                                       refresh, so a replica that dies stops counting
//   sluice:limits:rate:<kind>:<client>  the client's events in the current window (TTL = unit)
//
// The replica keeps its own connection counts as the truth (every count it sent to Redis is
// in `mine_`), and rewrites its hash from them at every (re)connect. Redis slow or down: a
// session waits at most shared_limits_timeout_milliseconds, then the replica counts alone
// (Admission's local counts), logs the change once, exports sluice_frontend_shared_limits_up
// 0, and reconnects with backoff; sessions decide locally at once until Redis answers again.
// All Redis work runs on one io_context of the stage's pool (the "home"); sessions on other
// threads post to it and are resumed on their own executor.
//
// Never: lets a session wait on Redis longer than the bound; blocks an io thread (names are
// resolved asynchronously); refuses a client because Redis failed (a failure means local
// counting, never a 4xx of its own).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "asio/awaitable.hpp"
#include "asio/io_context.hpp"
#include "asio/ip/tcp.hpp"
#include "asio/steady_timer.hpp"
#include "lib/redis/redis_connection.h"
#include "lib/redis/redis_url.h"
#include "sluice/v1/limits.pb.h"

namespace sluice::control {
class LimitsStore;
}

namespace sluice::frontend {

class FrontendMetrics;

class SharedLimits {
 public:
  enum class Verdict {
    kAllowed,               // counted
    kTooManyConnections,    // per_client_connection_limit reached across the replicas
    kRateExceeded,          // the rate's window is full (the event is counted, as anvil does)
    kUnavailable,           // no answer within the bound: decide locally
  };
  enum class Rate { kConnection, kMessage, kRecipient };

  // `url` as redis_url.h parses it; `replica` names this process uniquely among the replicas.
  static absl::StatusOr<std::unique_ptr<SharedLimits>> Create(std::string_view url, std::string replica,
                                                              asio::io_context& home, control::LimitsStore& limits,
                                                              FrontendMetrics& metrics);
  // A replica id unique to this process: the host name and a random suffix (a restarted pod
  // of the same name must not inherit the counts of its predecessor, which expire instead).
  static std::string NewReplicaId(std::string_view hostname);
  ~SharedLimits();
  SharedLimits(const SharedLimits&) = delete;
  SharedLimits& operator=(const SharedLimits&) = delete;

  // Connects in the background (reconnecting with backoff for as long as it runs).
  void Start();
  // Takes this replica's counts out of Redis and closes the connection; waits at most about
  // a second. Call while the io threads still run (StageProcess's before-stop).
  void Stop();

  // One more connection of `client`: allowed and counted in Redis when the connections of
  // every replica and the connection rate allow it.
  asio::awaitable<Verdict> AcquireConnection(std::string client, uint32_t connection_limit, uint32_t rate_limit,
                                             uint32_t unit_seconds);
  // A connection admitted without asking (exempt, or decided locally): counted, not limited.
  void AddConnection(std::string client);
  void ReleaseConnection(std::string client);
  // One MAIL or RCPT of `client` against its rate.
  asio::awaitable<Verdict> CountEvent(Rate rate, std::string client, uint32_t limit, uint32_t unit_seconds);

  bool up() const { return up_.load(std::memory_order_acquire); }
  const std::string& replica() const { return replica_; }

 private:
  SharedLimits(redis::RedisUrl url, std::string replica, asio::io_context& home, control::LimitsStore& limits,
               FrontendMetrics& metrics);

  // ---- on the home thread ----
  void Connect();
  void Connected(std::shared_ptr<redis::RedisConnection> conn);
  void Failed(std::string_view reason, const absl::Status& why);
  void SetUp();
  void Heartbeat();
  void ScheduleReconnect();
  // Runs one script with the session bound; the verdict goes to `done`.
  void Ask(std::vector<std::string> argv, absl::AnyInvocable<void(redis::RedisConnection::Reply)> done);
  // A background command (count changes, heartbeat); a failure marks Redis down.
  void Tell(std::vector<std::string> argv, absl::AnyInvocable<void(const redis::RedisValue&)> then = nullptr);
  std::vector<std::string> ResyncCommand() const;

  // Resumes the calling coroutine with the verdict of a script run on the home thread.
  asio::awaitable<Verdict> Decide(std::vector<std::string> argv, std::string client, bool counts_connection);

  std::chrono::milliseconds Bound() const;
  std::chrono::milliseconds Lease() const;
  std::string ConnKey(std::string_view replica) const;

  const redis::RedisUrl url_;
  const std::string replica_;
  asio::io_context& home_;
  control::LimitsStore& limits_;
  FrontendMetrics& metrics_;
  std::atomic<bool> up_{false};

  // Home thread only.
  // kSyncing: the resync is sent on conn_, so count changes may follow it; kUp: answered.
  enum class State { kIdle, kConnecting, kSyncing, kUp };
  State state_ = State::kIdle;
  std::shared_ptr<redis::RedisConnection> conn_;  // the live connection, or the one being set up
  asio::ip::tcp::resolver resolver_;
  asio::steady_timer reconnect_timer_;
  asio::steady_timer heartbeat_timer_;
  std::chrono::milliseconds backoff_;
  bool stopped_ = false;
  bool said_down_ = false;  // "shared_limits_down" logged; the next success logs "up"
  absl::flat_hash_map<std::string, uint32_t> mine_;  // this replica's connections per client
};

}  // namespace sluice::frontend
