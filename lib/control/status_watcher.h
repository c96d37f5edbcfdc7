// lib/control/status_watcher.h
//
// The client side of backpressure: watches Admin.WatchStatus of the next stage's replicas
// and says whether any of them takes new sessions. Each target is "HOST:PORT"; HOST may be
// a DNS name with many addresses (the pods behind a headless Service), re-resolved every
// few seconds, and every address gets its own stream (a thread each; at most max_streams)
// that reconnects with backoff. A stream counts only while it is fresh: a replica silent
// for longer than stale_after (the server pushes at least every interval) is cancelled and
// redialled.
//
//   kAccepting  at least one watched replica is SERVING with accepting=true
//   kFull       replicas are watched, none accepts: the frontend answers 421 4.3.2 at once
//   kUnknown    no stream is established (never connected, or every stream lost): the
//               caller must not refuse on our word; it connects and lets connect errors speak
//
// With fetch_limits, each status message also fetches that replica's
// Admin.GetEffectiveLimits (effective_limits.h) on the same channel; OnLimits hears every
// change of the set. A replica's last answer stays in the set while its address resolves
// (a restart does not raise the limits for a moment); a replica that does not implement
// the call (an older sluice) is left out.
//
// Never: reports kFull or kAccepting from a stream that is gone; blocks state() (an atomic
// load, cheap on every new session); calls the change callback under its own lock.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "lib/control/admin_channel.h"
#include "lib/control/effective_limits.h"
#include "sluice/v1/admin.grpc.pb.h"

namespace sluice::control {

enum class Downstream { kAccepting, kFull, kUnknown };
std::string_view DownstreamName(Downstream d);  // "accepting", "full", "unknown"

struct StatusWatcherOptions {
  std::vector<std::string> targets;  // "HOST:PORT" each
  AdminClientOptions client;         // TLS; tls_server_name defaults to each target's HOST
  absl::Duration interval = absl::Seconds(5);       // asked of the server
  absl::Duration stale_after = absl::ZeroDuration();  // 0: 2 * interval + 2 s
  absl::Duration resolve_every = absl::Seconds(5);
  absl::Duration backoff_initial = absl::Milliseconds(200);
  absl::Duration backoff_max = absl::Seconds(5);
  size_t max_streams = 64;
  bool fetch_limits = false;  // ask each replica's GetEffectiveLimits too (OnLimits)
  absl::Duration limits_timeout = absl::Seconds(2);
};

class StatusWatcher {
 public:
  explicit StatusWatcher(StatusWatcherOptions options);
  ~StatusWatcher();  // Stop()
  StatusWatcher(const StatusWatcher&) = delete;
  StatusWatcher& operator=(const StatusWatcher&) = delete;

  // Called (from a watcher thread, never two at once) whenever state() changes.
  // Set before Start.
  void OnChange(std::function<void(Downstream)> callback);
  // Called (from a watcher thread, never two at once) with every replica's last limits
  // whenever one of them changes (fetch_limits). Set before Start.
  void OnLimits(std::function<void(std::vector<DownstreamLimits>)> callback);
  void Start();
  void Stop();  // ends every stream and thread; state() is kUnknown afterwards

  Downstream state() const { return state_.load(std::memory_order_acquire); }
  bool accepting() const { return state() == Downstream::kAccepting; }
  // The last status of every established stream.
  std::vector<sluice::v1::StageStatus> last() const;
  // The targets, comma separated (StageStatus.downstream).
  std::string description() const;
  size_t streams() const;  // streams running (resolved addresses), established or not
  uint64_t attempts() const { return attempts_.load(std::memory_order_relaxed); }  // calls started

 private:
  using Clock = std::chrono::steady_clock;
  struct Stream;

  void Manage();                                   // resolver + watchdog thread
  void RunStream(std::shared_ptr<Stream> stream);  // one per address
  void Resolve();
  void CancelStale();
  void Recompute();     // under mu_
  void ReportChange();  // not under mu_
  // GetEffectiveLimits of the stream's replica; reports a change (not under mu_).
  void FetchLimits(sluice::v1::Admin::Stub& stub, const std::shared_ptr<Stream>& s);
  void ReportLimits();  // not under mu_

  const StatusWatcherOptions options_;
  const Clock::duration stale_after_;
  std::function<void(Downstream)> on_change_;
  std::function<void(std::vector<DownstreamLimits>)> on_limits_;
  std::atomic<Downstream> state_{Downstream::kUnknown};
  std::atomic<uint64_t> attempts_{0};

  mutable std::mutex mu_;
  std::condition_variable wake_;  // stop, for the manager and the streams' backoff
  bool started_ = false;
  bool stopping_ = false;
  std::map<std::string, std::shared_ptr<Stream>> streams_;           // by address
  std::map<std::string, std::vector<std::string>> resolved_;         // target -> addresses
  std::thread manager_;

  std::mutex report_mu_;
  Downstream reported_ = Downstream::kUnknown;
  std::mutex limits_report_mu_;  // one OnLimits call at a time
};

}  // namespace sluice::control
