// services/reinject/verify/recipient_verifier.cc -- see recipient_verifier.h.
#include "services/reinject/verify/recipient_verifier.h"

#include <atomic>
#include <chrono>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "asio/co_spawn.hpp"
#include "asio/experimental/as_tuple.hpp"
#include "asio/experimental/awaitable_operators.hpp"
#include "asio/post.hpp"
#include "asio/steady_timer.hpp"
#include "asio/use_awaitable.hpp"
#include "google/protobuf/util/time_util.h"
#include "lib/control/proto_defaults.h"
#include "lib/observe/log.h"

namespace sluice::reinject {
namespace {

using sluice::v1::VerifyRecipientResponse;

constexpr auto nothrow = asio::experimental::as_tuple(asio::use_awaitable);
// Postfix's words for "no answer yet" (verify.c), which the frontend passes on.
constexpr std::string_view kInProgress = "Address verification in progress";

VerifyRecipientResponse Unknown(std::string_view why) {
  VerifyRecipientResponse r;
  r.set_status(sluice::v1::ADDRESS_UNKNOWN);
  r.set_reply(std::string(why));
  return r;
}

std::string_view AnswerName(sluice::v1::AddressStatus s) {
  switch (s) {
    case sluice::v1::ADDRESS_DELIVERABLE: return "deliverable";
    case sluice::v1::ADDRESS_UNDELIVERABLE: return "undeliverable";
    case sluice::v1::ADDRESS_DEFERRED: return "deferred";
    default: return "unknown";
  }
}

struct ProbeOutcome {
  ProbeResult result;
  bool timed_out = false;
};

}  // namespace

struct RecipientVerifier::Waiter {
  Done done;
  bool answered = false;                      // guarded by the verifier's mu_
  std::unique_ptr<asio::steady_timer> timer;  // the end of the wait, on the probe's executor
};

struct RecipientVerifier::Probe {
  std::string key;
  std::string address;
  asio::any_io_executor executor;
  std::shared_ptr<asio::steady_timer> deadline;  // verify_probe_timeout; Stop cancels it
  std::atomic<bool> cancelled{false};
  std::vector<std::shared_ptr<Waiter>> waiters;  // guarded by mu_
  std::chrono::steady_clock::time_point started;
};

namespace {

// One probe, cut at `timeout` or when the deadline timer is cancelled (Stop).
asio::awaitable<ProbeOutcome> RunProbe(DeliveryAgent* agent, std::string sender, std::string address,
                                       std::shared_ptr<asio::steady_timer> deadline, absl::Duration timeout,
                                       const std::atomic<bool>* cancelled) {
  ProbeOutcome out;
  deadline->expires_after(absl::ToChronoNanoseconds(timeout));
  if (cancelled->load()) {
    out.result.reply = "probe cancelled: shutting down";
    co_return out;
  }
  try {
    using namespace asio::experimental::awaitable_operators;
    auto r = co_await (agent->Probe(sender, address) || deadline->async_wait(nothrow));
    if (r.index() == 0) {
      out.result = std::get<0>(std::move(r));
    } else {
      out.timed_out = !cancelled->load();
      out.result.answer = ProbeAnswer::kFailed;
      out.result.reply = out.timed_out
                             ? absl::StrCat("probe timed out after ", absl::FormatDuration(timeout))
                             : std::string("probe cancelled: shutting down");
    }
  } catch (const std::exception& e) {
    out.result.answer = ProbeAnswer::kFailed;
    out.result.reply = absl::StrCat("probe failed: ", e.what());
  }
  co_return out;
}

}  // namespace

RecipientVerifier::RecipientVerifier(RecipientVerifierOptions options) : options_(std::move(options)) {}

RecipientVerifier::~RecipientVerifier() { StopAndWait(absl::Seconds(10)); }

uint64_t RecipientVerifier::probes_started() const {
  std::lock_guard<std::mutex> lock(mu_);
  return started_;
}

size_t RecipientVerifier::running() const {
  std::lock_guard<std::mutex> lock(mu_);
  return running_.size();
}

VerifyCachePolicy RecipientVerifier::Policy(const sluice::v1::Limits& limits) const {
  return VerifyCachePolicy::From(limits, options_.negative_cache);
}

void RecipientVerifier::Count(const VerifyRecipientResponse& response) {
  if (options_.metrics != nullptr) options_.metrics->queries.at({AnswerName(response.status())}).Increment();
}

std::shared_ptr<RecipientVerifier::Probe> RecipientVerifier::StartProbe(const std::string& key,
                                                                        const std::string& address,
                                                                        const sluice::v1::Limits& limits) {
  if (running_.size() >= limits.verify_probe_concurrency()) {
    if (options_.metrics != nullptr) options_.metrics->limit_hits.at({"verify_probe_concurrency"}).Increment();
    return nullptr;
  }
  auto probe = std::make_shared<Probe>();
  probe->key = key;
  probe->address = address;
  probe->executor = options_.executor();
  probe->deadline = std::make_shared<asio::steady_timer>(probe->executor);
  probe->started = std::chrono::steady_clock::now();
  running_[key] = probe;
  ++started_;
  if (options_.metrics != nullptr) options_.metrics->probes_running.Set(static_cast<double>(running_.size()));
  // co_spawn posts the start to the probe's executor: nothing runs here, under mu_.
  absl::Duration timeout = absl::Seconds(limits.verify_probe_timeout_seconds());
  asio::co_spawn(probe->executor,
                 RunProbe(options_.agent, options_.sender, address, probe->deadline, timeout, &probe->cancelled),
                 [this, probe](std::exception_ptr e, ProbeOutcome outcome) {
                   if (e) {
                     outcome = ProbeOutcome{};
                     outcome.result.reply = "probe failed";
                   }
                   double seconds =
                       std::chrono::duration<double>(std::chrono::steady_clock::now() - probe->started).count();
                   Finished(probe, outcome.result, outcome.timed_out, seconds);
                 });
  return probe;
}

void RecipientVerifier::Verify(const std::string& address, absl::Duration wait, Done done) {
  std::shared_ptr<const sluice::v1::Limits> limits = options_.limits ? options_.limits() : nullptr;
  if (limits == nullptr) {
    auto defaults = std::make_shared<sluice::v1::Limits>();
    control::ApplyDefaults(defaults.get());
    limits = std::move(defaults);
  }
  const VerifyCachePolicy policy = Policy(*limits);
  const std::string key = VerifyKey(address);
  const absl::Time now = options_.now();

  VerifyRecipientResponse immediate;
  bool answer_now = true;
  std::shared_ptr<Waiter> waiter;
  std::shared_ptr<Probe> probe;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      immediate = Unknown("address verification is shutting down");
    } else if (std::optional<AddressVerifyCache::Found> found = cache_.Find(key, now, policy)) {
      if (options_.metrics != nullptr) options_.metrics->cache_lookups.at({"hit"}).Increment();
      immediate.set_status(found->answer.deliverable ? sluice::v1::ADDRESS_DELIVERABLE
                                                     : sluice::v1::ADDRESS_UNDELIVERABLE);
      immediate.set_reply(found->answer.reply);
      immediate.set_from_cache(true);
      *immediate.mutable_learned_at() =
          google::protobuf::util::TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(found->answer.learned));
      // Stale but in force: answer it, and let a probe refresh it behind the answer.
      if (found->refresh && running_.count(key) == 0 && StartProbe(key, address, *limits) != nullptr) {
        cache_.MarkRefreshing(key, now);
      }
    } else {
      if (options_.metrics != nullptr) options_.metrics->cache_lookups.at({"miss"}).Increment();
      auto it = running_.find(key);
      probe = it != running_.end() ? it->second : StartProbe(key, address, *limits);
      if (probe == nullptr || wait <= absl::ZeroDuration()) {
        immediate = Unknown(kInProgress);
      } else {
        waiter = std::make_shared<Waiter>();
        waiter->done = std::move(done);
        probe->waiters.push_back(waiter);
        ++timers_;
        answer_now = false;
      }
    }
    if (answer_now) Count(immediate);
  }
  if (answer_now) {
    done(std::move(immediate));
    return;
  }
  // The end of the wait, on the probe's executor, where the probe answers its waiters too.
  asio::any_io_executor ex = probe->executor;
  asio::post(ex, [this, waiter, wait, ex] {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!waiter->answered) {
        waiter->timer = std::make_unique<asio::steady_timer>(ex, absl::ToChronoNanoseconds(wait));
        waiter->timer->async_wait([this, waiter](std::error_code) {
          VerifyRecipientResponse response = Unknown(kInProgress);
          Done d;
          {
            std::lock_guard<std::mutex> lock(mu_);
            if (!waiter->answered) {
              waiter->answered = true;
              d = std::move(waiter->done);
              Count(response);
            }
            --timers_;
            idle_.notify_all();
          }
          if (d) d(std::move(response));
        });
        return;
      }
      --timers_;
      idle_.notify_all();
    }
  });
}

void RecipientVerifier::Finished(const std::shared_ptr<Probe>& probe, const ProbeResult& result, bool timed_out,
                                 double seconds) {
  std::shared_ptr<const sluice::v1::Limits> limits = options_.limits ? options_.limits() : nullptr;
  sluice::v1::Limits defaults;
  if (limits == nullptr) control::ApplyDefaults(&defaults);
  const VerifyCachePolicy policy = Policy(limits ? *limits : defaults);

  VerifyRecipientResponse response;
  std::string_view result_name;
  switch (result.answer) {
    case ProbeAnswer::kDeliverable:
      response.set_status(sluice::v1::ADDRESS_DELIVERABLE);
      result_name = "deliverable";
      break;
    case ProbeAnswer::kUndeliverable:
      response.set_status(sluice::v1::ADDRESS_UNDELIVERABLE);
      result_name = "undeliverable";
      break;
    case ProbeAnswer::kDeferred:
      response.set_status(sluice::v1::ADDRESS_DEFERRED);
      result_name = "deferred";
      break;
    case ProbeAnswer::kFailed:
      response.set_status(sluice::v1::ADDRESS_UNKNOWN);
      result_name = timed_out ? "timeout" : "failed";
      break;
  }
  response.set_reply(result.reply);
  if (result.answer == ProbeAnswer::kDeliverable || result.answer == ProbeAnswer::kUndeliverable) {
    uint64_t evicted = cache_.evictions();
    cache_.Store(probe->key, result.answer == ProbeAnswer::kDeliverable, result.reply, options_.now(), policy);
    if (options_.metrics != nullptr) {
      uint64_t more = cache_.evictions() - evicted;
      if (more > 0) options_.metrics->limit_hits.at({"address_verify_cache_max_entries"}).Increment(static_cast<double>(more));
    }
  }
  if (options_.metrics != nullptr) {
    options_.metrics->probes.at({result_name}).Increment();
    options_.metrics->probe_seconds.Observe(seconds);
    options_.metrics->cache_entries.Set(static_cast<double>(cache_.size()));
  }
  observe::LogLine(result.answer == ProbeAnswer::kFailed ? observe::Level::kWarn : observe::Level::kInfo,
                   "verify_probe")
      .Kv("to", probe->address)
      .Kv("relay", std::string(options_.agent->name()))
      .Kv("result", result_name)
      .Kv("reply", result.reply)
      .Kv("seconds", seconds);

  std::vector<Done> dones;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const std::shared_ptr<Waiter>& w : probe->waiters) {
      if (w->answered) continue;
      w->answered = true;
      dones.push_back(std::move(w->done));
      if (w->timer) w->timer->cancel();  // we run on its executor
      Count(response);
    }
    probe->waiters.clear();
    running_.erase(probe->key);
    if (options_.metrics != nullptr) options_.metrics->probes_running.Set(static_cast<double>(running_.size()));
    idle_.notify_all();
  }
  // The callbacks (gRPC reactors) do not touch this object: it may be gone once mu_ is free.
  for (Done& d : dones) d(response);
}

void RecipientVerifier::StopAndWait(absl::Duration deadline) {
  std::vector<std::shared_ptr<Probe>> probes;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    for (auto& [key, p] : running_) probes.push_back(p);
  }
  for (auto& p : probes) {
    p->cancelled.store(true);
    asio::post(p->executor, [p] { p->deadline->cancel(); });
  }
  std::unique_lock<std::mutex> lock(mu_);
  if (!idle_.wait_for(lock, absl::ToChronoNanoseconds(deadline), [this] { return running_.empty() && timers_ == 0; })) {
    observe::Warn("verify_stop_timeout").Kv("probes", static_cast<uint64_t>(running_.size()));
  }
}

}  // namespace sluice::reinject
