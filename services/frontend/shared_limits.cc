// services/frontend/shared_limits.cc -- see shared_limits.h.
#include "services/frontend/shared_limits.h"

#include <openssl/evp.h>

#include <future>
#include <random>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "asio/post.hpp"
#include "asio/use_awaitable.hpp"
#include "lib/control/limits_store.h"
#include "lib/observe/log.h"
#include "services/frontend/frontend_metrics.h"

namespace sluice::frontend {
namespace {

using redis::RedisConnection;
using redis::RedisValue;

constexpr absl::string_view kReplicasKey = "sluice:limits:replicas";
constexpr absl::string_view kConnPrefix = "sluice:limits:conn:";
constexpr absl::string_view kRatePrefix = "sluice:limits:rate:";
// Connect + setup, and the background commands (count changes, heartbeat): never a
// session's wait, so longer than the session bound.
constexpr auto kSetupTimeout = std::chrono::milliseconds(2000);
constexpr auto kMinBackoff = std::chrono::milliseconds(200);
constexpr auto kMaxBackoff = std::chrono::milliseconds(5000);

// The verdict codes the scripts return as {code, count}.
constexpr int64_t kCodeAllowed = 0;
constexpr int64_t kCodeTooMany = 1;
constexpr int64_t kCodeRate = 2;

// KEYS: replicas set, this replica's hash, the connection-rate key.
// ARGV: client, replica, connection limit, rate limit, unit ms, lease ms, hash key prefix.
// The sum over the replicas first (a replica whose hash expired is dropped from the set),
// then the rate, then the count -- the order of Admission's local decision.
constexpr std::string_view kAcquireLua = R"lua(
local client, me = ARGV[1], ARGV[2]
local limit, rate = tonumber(ARGV[3]), tonumber(ARGV[4])
local total = 0
if limit > 0 then
  for _, r in ipairs(redis.call('SMEMBERS', KEYS[1])) do
    local key = ARGV[7] .. r
    local n = redis.call('HGET', key, client)
    if n then
      total = total + tonumber(n)
    elseif r ~= me and redis.call('EXISTS', key) == 0 then
      redis.call('SREM', KEYS[1], r)
    end
  end
  if total >= limit then return {1, total} end
end
if rate > 0 then
  local n = redis.call('INCR', KEYS[3])
  if n == 1 then redis.call('PEXPIRE', KEYS[3], ARGV[5]) end
  if n > rate then return {2, n} end
end
redis.call('SADD', KEYS[1], me)
redis.call('HINCRBY', KEYS[2], client, 1)
redis.call('PEXPIRE', KEYS[2], ARGV[6])
return {0, total + 1}
)lua";

// KEYS: the rate key. ARGV: limit, unit ms. A window starts at its first event (anvil).
constexpr std::string_view kEventLua = R"lua(
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if n > tonumber(ARGV[1]) then return {2, n} end
return {0, n}
)lua";

// KEYS: replicas set, this replica's hash. ARGV: client, replica, lease ms.
constexpr std::string_view kAddLua = R"lua(
redis.call('SADD', KEYS[1], ARGV[2])
redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 1
)lua";

// KEYS: this replica's hash. ARGV: client.
constexpr std::string_view kReleaseLua = R"lua(
local n = redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
if n <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
return n
)lua";

// KEYS: replicas set, this replica's hash. ARGV: replica, lease ms. 0 when the hash is gone.
constexpr std::string_view kHeartbeatLua = R"lua(
redis.call('SADD', KEYS[1], ARGV[1])
return redis.call('PEXPIRE', KEYS[2], ARGV[2])
)lua";

// KEYS: replicas set, this replica's hash. ARGV: replica, lease ms, then client, count pairs.
constexpr std::string_view kResyncLua = R"lua(
redis.call('DEL', KEYS[2])
for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
if #ARGV > 2 then redis.call('PEXPIRE', KEYS[2], ARGV[2]) end
redis.call('SADD', KEYS[1], ARGV[1])
return 1
)lua";

std::string Sha1Hex(std::string_view text) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(text.data(), text.size(), md, &len, EVP_sha1(), nullptr);
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(md), len));
}

// EVALSHA of a script (loaded at every connect), with its keys and arguments.
struct Script {
  explicit Script(std::string_view source) : lua(source), sha(Sha1Hex(source)) {}
  std::vector<std::string> Call(std::vector<std::string> keys, std::vector<std::string> args) const {
    std::vector<std::string> argv = {"EVALSHA", sha, std::to_string(keys.size())};
    for (auto& k : keys) argv.push_back(std::move(k));
    for (auto& a : args) argv.push_back(std::move(a));
    return argv;
  }
  std::string_view lua;
  std::string sha;
};

struct Scripts {
  Script acquire{kAcquireLua}, event{kEventLua}, add{kAddLua}, release{kReleaseLua}, heartbeat{kHeartbeatLua},
      resync{kResyncLua};
  std::vector<const Script*> all() const { return {&acquire, &event, &add, &release, &heartbeat, &resync}; }
};

const Scripts& TheScripts() {
  static const Scripts* s = new Scripts();
  return *s;
}

std::string_view RateName(SharedLimits::Rate r) {
  switch (r) {
    case SharedLimits::Rate::kConnection: return "connection";
    case SharedLimits::Rate::kMessage: return "message";
    case SharedLimits::Rate::kRecipient: return "recipient";
  }
  return "?";
}

std::string RateKey(SharedLimits::Rate r, std::string_view client) {
  return absl::StrCat(kRatePrefix, std::string(RateName(r)), ":", std::string(client));
}

std::string Millis(uint64_t seconds) { return std::to_string(seconds * 1000); }

// {code, count} from a script; anything else is a failure (local counting decides).
SharedLimits::Verdict Interpret(const RedisConnection::Reply& r) {
  if (!r.ok() || r->type != RedisValue::Type::kArray || r->elements.size() != 2) {
    return SharedLimits::Verdict::kUnavailable;
  }
  auto code = r->elements[0].AsInteger();
  if (!code.ok()) return SharedLimits::Verdict::kUnavailable;
  switch (*code) {
    case kCodeAllowed: return SharedLimits::Verdict::kAllowed;
    case kCodeTooMany: return SharedLimits::Verdict::kTooManyConnections;
    case kCodeRate: return SharedLimits::Verdict::kRateExceeded;
    default: return SharedLimits::Verdict::kUnavailable;
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<SharedLimits>> SharedLimits::Create(std::string_view url, std::string replica,
                                                                  asio::io_context& home, control::LimitsStore& limits,
                                                                  FrontendMetrics& metrics) {
  auto parsed = redis::ParseRedisUrl(url);
  if (!parsed.ok()) return parsed.status();
  return std::unique_ptr<SharedLimits>(new SharedLimits(*std::move(parsed), std::move(replica), home, limits, metrics));
}

std::string SharedLimits::NewReplicaId(std::string_view hostname) {
  std::random_device rd;
  return absl::StrCat(std::string(hostname), "-", absl::Hex(rd(), absl::kZeroPad8));
}

SharedLimits::SharedLimits(redis::RedisUrl url, std::string replica, asio::io_context& home,
                           control::LimitsStore& limits, FrontendMetrics& metrics)
    : url_(std::move(url)), replica_(std::move(replica)), home_(home), limits_(limits), metrics_(metrics),
      resolver_(home), reconnect_timer_(home), heartbeat_timer_(home), backoff_(kMinBackoff) {
  metrics_.shared_limits_configured().Set(1);
  metrics_.shared_limits_up().Set(0);
}

SharedLimits::~SharedLimits() {
  // The io threads have stopped: nothing else touches the connection now.
  if (conn_) conn_->Close();
}

void SharedLimits::Start() {
  asio::post(home_, [this] { Connect(); });
}

void SharedLimits::Stop() {
  auto done = std::make_shared<std::promise<void>>();
  std::future<void> finished = done->get_future();
  asio::post(home_, [this, done] {
    stopped_ = true;
    reconnect_timer_.cancel();
    heartbeat_timer_.cancel();
    resolver_.cancel();
    up_.store(false, std::memory_order_release);
    metrics_.shared_limits_up().Set(0);
    auto finish = [this, done] {
      if (conn_) conn_->Close();
      conn_.reset();
      done->set_value();
    };
    if (!conn_ || state_ < State::kSyncing) {
      finish();
      return;
    }
    // This replica's connections leave the shared count now, not at the end of the lease.
    conn_->Command({"DEL", ConnKey(replica_)}, kSetupTimeout, [](RedisConnection::Reply) {});
    conn_->Command({"SREM", std::string(kReplicasKey), replica_}, kSetupTimeout,
                   [finish](RedisConnection::Reply) mutable { finish(); });
  });
  finished.wait_for(kSetupTimeout + std::chrono::milliseconds(500));
}

std::chrono::milliseconds SharedLimits::Bound() const {
  return std::chrono::milliseconds(limits_.Get()->shared_limits_timeout_milliseconds());
}

std::chrono::milliseconds SharedLimits::Lease() const {
  return std::chrono::milliseconds(1000LL * limits_.Get()->shared_limits_lease_seconds());
}

std::string SharedLimits::ConnKey(std::string_view replica) const {
  return absl::StrCat(kConnPrefix, std::string(replica));
}

// ---- the connection's life, on the home thread ----

void SharedLimits::Connect() {
  if (stopped_) return;
  state_ = State::kConnecting;
  resolver_.async_resolve(url_.host, std::to_string(url_.port),
                          [this](std::error_code ec, asio::ip::tcp::resolver::results_type results) {
                            if (stopped_ || ec == asio::error::operation_aborted) return;
                            if (ec || results.empty()) {
                              Failed("resolve", absl::UnavailableError(absl::StrCat("resolve ", url_.host, ": ",
                                                                                    ec ? ec.message() : "no address")));
                              return;
                            }
                            asio::ip::tcp::endpoint ep = results.begin()->endpoint();
                            auto conn = RedisConnection::Create(home_.get_executor());
                            conn_ = conn;
                            conn->OnLost([this, conn](absl::Status st) {
                              if (conn == conn_) Failed("lost", st);
                            });
                            conn->Connect(ep.address().to_string(), ep.port(), kSetupTimeout,
                                          [this, conn](absl::Status st) {
                                            if (conn != conn_) return;
                                            if (!st.ok()) {
                                              Failed("connect", st);
                                              return;
                                            }
                                            Connected(conn);
                                          });
                          });
}

void SharedLimits::Connected(std::shared_ptr<RedisConnection> conn) {
  // One pipeline: the database, the scripts, then this replica's counts as they are now.
  // Replies come in order, so the last one's callback has seen every earlier failure.
  auto failure = std::make_shared<absl::Status>();
  auto check = [failure](RedisConnection::Reply r) {
    if (!r.ok()) {
      *failure = r.status();
    } else if (r->is_error()) {
      *failure = absl::InternalError(absl::StrCat("redis: ", r->str));
    }
  };
  if (url_.db != 0) conn->Command({"SELECT", std::to_string(url_.db)}, kSetupTimeout, check);
  for (const Script* s : TheScripts().all()) conn->Command({"SCRIPT", "LOAD", std::string(s->lua)}, kSetupTimeout, check);
  conn->Command(ResyncCommand(), kSetupTimeout, [this, conn, failure](RedisConnection::Reply r) {
    if (conn != conn_) return;
    if (r.ok() && r->is_error()) r = absl::InternalError(absl::StrCat("redis: ", r->str));
    if (!r.ok()) *failure = r.status();
    if (!failure->ok()) {
      Failed("setup", *failure);
      return;
    }
    SetUp();
  });
  // From here on count changes follow the resync on this connection, in order.
  state_ = State::kSyncing;
}

std::vector<std::string> SharedLimits::ResyncCommand() const {
  std::vector<std::string> args = {replica_, std::to_string(Lease().count())};
  for (const auto& [client, n] : mine_) {
    args.push_back(client);
    args.push_back(std::to_string(n));
  }
  return TheScripts().resync.Call({std::string(kReplicasKey), ConnKey(replica_)}, std::move(args));
}

void SharedLimits::SetUp() {
  state_ = State::kUp;
  up_.store(true, std::memory_order_release);
  metrics_.shared_limits_up().Set(1);
  backoff_ = kMinBackoff;
  observe::Info("shared_limits_up")
      .Kv("redis", url_.ToString())
      .Kv("replica", replica_)
      .Kv("clients", static_cast<uint64_t>(mine_.size()))
      .Kv("after_outage", said_down_);
  said_down_ = false;
  heartbeat_timer_.cancel();
  Heartbeat();
}

void SharedLimits::Failed(std::string_view reason, const absl::Status& why) {
  if (conn_) {
    std::shared_ptr<RedisConnection> c = std::move(conn_);
    c->Close();  // commands still waiting get UNAVAILABLE: their sessions count locally
  }
  state_ = State::kIdle;
  heartbeat_timer_.cancel();
  bool was_up = up_.exchange(false, std::memory_order_acq_rel);
  metrics_.shared_limits_up().Set(0);
  if (was_up || !said_down_) {
    // Once per outage: every session meanwhile counts locally (the fallbacks counter says how often).
    observe::Warn("shared_limits_down")
        .Kv("redis", url_.ToString())
        .Kv("replica", replica_)
        .Kv("reason", reason)
        .Kv("error", std::string(why.message()));
    said_down_ = true;
  }
  ScheduleReconnect();
}

void SharedLimits::ScheduleReconnect() {
  if (stopped_) return;
  reconnect_timer_.expires_after(backoff_);
  backoff_ = std::min<std::chrono::milliseconds>(backoff_ * 2, kMaxBackoff);
  reconnect_timer_.async_wait([this](std::error_code ec) {
    if (!ec) Connect();
  });
}

void SharedLimits::Heartbeat() {
  if (state_ != State::kUp) return;
  // Refresh the lease; a hash that expired meanwhile (Redis stalled past the lease) means
  // the shared count lost our connections: reconnect, which rewrites them. Whether the hash
  // must exist is decided now: every count change sent before this is applied before it,
  // while one sent after it may create the hash only later.
  bool holds_connections = !mine_.empty();
  Tell(TheScripts().heartbeat.Call({std::string(kReplicasKey), ConnKey(replica_)},
                                   {replica_, std::to_string(Lease().count())}),
       [this, holds_connections](const RedisValue& v) {
         if (v.type == RedisValue::Type::kInteger && v.integer == 0 && holds_connections) {
           Failed("lease_lost", absl::DataLossError("this replica's counts expired from Redis"));
         }
       });
  heartbeat_timer_.expires_after(std::max<std::chrono::milliseconds>(Lease() / 3, std::chrono::milliseconds(100)));
  heartbeat_timer_.async_wait([this](std::error_code ec) {
    if (!ec) Heartbeat();
  });
}

void SharedLimits::Ask(std::vector<std::string> argv, absl::AnyInvocable<void(RedisConnection::Reply)> done) {
  if (!conn_ || state_ != State::kUp) {
    metrics_.SharedLimitsFallback("down");
    done(absl::UnavailableError("redis: down"));
    return;
  }
  conn_->Command(argv, Bound(), [this, conn = conn_, done = std::move(done)](RedisConnection::Reply r) mutable {
    if (!r.ok()) {
      metrics_.SharedLimitsFallback(r.status().code() == absl::StatusCode::kDeadlineExceeded ? "timeout" : "down");
      if (conn == conn_) Failed(r.status().code() == absl::StatusCode::kDeadlineExceeded ? "timeout" : "lost", r.status());
    } else if (r->is_error()) {
      metrics_.SharedLimitsFallback("error");
      // NOSCRIPT (SCRIPT FLUSH), OOM, READONLY (a replica): a fresh connection sets up again.
      if (conn == conn_) Failed("error", absl::InternalError(r->str));
    }
    done(std::move(r));
  });
}

void SharedLimits::Tell(std::vector<std::string> argv, absl::AnyInvocable<void(const RedisValue&)> then) {
  if (!conn_ || state_ < State::kSyncing) return;  // the next resync carries it
  conn_->Command(argv, kSetupTimeout, [this, conn = conn_, then = std::move(then)](RedisConnection::Reply r) mutable {
    if (conn != conn_) return;
    if (!r.ok() || r->is_error()) {
      Failed("background", r.ok() ? absl::InternalError(r->str) : r.status());
      return;
    }
    if (then) then(*r);
  });
}

// ---- what sessions call ----

asio::awaitable<SharedLimits::Verdict> SharedLimits::Decide(std::vector<std::string> argv, std::string client,
                                                           bool counts_connection) {
  if (!up()) {
    metrics_.SharedLimitsFallback("down");
    co_return Verdict::kUnavailable;
  }
  auto started = std::chrono::steady_clock::now();
  auto initiate = [this, argv = std::move(argv), client = std::move(client), counts_connection](auto handler) mutable {
    auto session = asio::get_associated_executor(handler);
    asio::post(home_, [this, argv = std::move(argv), client = std::move(client), counts_connection,
                       handler = std::move(handler), session]() mutable {
      Ask(std::move(argv), [this, client = std::move(client), counts_connection, handler = std::move(handler),
                            session](RedisConnection::Reply r) mutable {
        Verdict v = Interpret(r);
        // Counted in Redis by the script: ours until released (resync keeps it there).
        if (v == Verdict::kAllowed && counts_connection) ++mine_[client];
        asio::post(session, [handler = std::move(handler), v]() mutable { handler(v); });
      });
    });
  };
  Verdict v = co_await asio::async_initiate<decltype(asio::use_awaitable), void(Verdict)>(std::move(initiate), asio::use_awaitable);
  metrics_.shared_limits_request_seconds().Observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  co_return v;
}

asio::awaitable<SharedLimits::Verdict> SharedLimits::AcquireConnection(std::string client, uint32_t connection_limit,
                                                                      uint32_t rate_limit, uint32_t unit_seconds) {
  // Not a coroutine itself: the argument lists are built here, outside any coroutine frame.
  std::vector<std::string> argv = TheScripts().acquire.Call(
      {std::string(kReplicasKey), ConnKey(replica_), RateKey(Rate::kConnection, client)},
      {client, replica_, std::to_string(connection_limit), std::to_string(rate_limit), Millis(unit_seconds),
       std::to_string(Lease().count()), std::string(kConnPrefix)});
  return Decide(std::move(argv), std::move(client), true);
}

asio::awaitable<SharedLimits::Verdict> SharedLimits::CountEvent(Rate rate, std::string client, uint32_t limit,
                                                               uint32_t unit_seconds) {
  std::vector<std::string> argv =
      TheScripts().event.Call({RateKey(rate, client)}, {std::to_string(limit), Millis(unit_seconds)});
  return Decide(std::move(argv), std::move(client), false);
}

void SharedLimits::AddConnection(std::string client) {
  asio::post(home_, [this, client = std::move(client)] {
    ++mine_[client];
    Tell(TheScripts().add.Call({std::string(kReplicasKey), ConnKey(replica_)},
                               {client, replica_, std::to_string(Lease().count())}));
  });
}

void SharedLimits::ReleaseConnection(std::string client) {
  asio::post(home_, [this, client = std::move(client)] {
    auto it = mine_.find(client);
    if (it == mine_.end()) return;
    if (--it->second == 0) mine_.erase(it);
    Tell(TheScripts().release.Call({ConnKey(replica_)}, {client}));
  });
}

}  // namespace sluice::frontend
