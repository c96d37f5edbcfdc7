// services/reinject/handoff/queue_handoff.h
//
// A reinject replica's queue hand-off (issue 10), wired into the stage:
//
//   - on SIGTERM, after receiving has stopped and the deliveries in flight have ended
//     (StageProcess's before-stop), HandOffAll gives every entry -- incoming, active,
//     deferred and held -- to handoff_peers (handoff_peers.h), within handoff_timeout_seconds;
//     what is not transferred by then stays on the volume for the next start;
//   - sluicectl queue move ID... --to=HOST:PORT / --all (Queue.Move): the same transfer of
//     chosen entries while the replica works on;
//   - peers handing their queue to this replica: Queue.Transfer (handoff_receiver.h), refused
//     while this replica drains;
//   - entries whose transfer got no answer (a crash, a broken stream: a hand-off mark in the
//     log) are asked after at their peer at start and every handoff_resolve_interval_seconds.
//
// Every hand-off logs event=handoff_done with its counts (one event=handoff_sent per entry,
// event=handoff_received at the receiver) and counts into handoff_metrics.h.
//
// Thread-safe; the calls that transfer block their caller (the Queue service's hand-off
// thread, or the stop sequence's thread).
// Never: transfers while the scheduler may still deliver the same entries (the drain paths
// end deliveries first; Move takes only idle entries); lists this replica among its peers.
#pragma once

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "services/reinject/handoff/handoff_metrics.h"
#include "services/reinject/handoff/handoff_receiver.h"
#include "services/reinject/handoff/handoff_sender.h"
#include "services/reinject/queue/queue_limits.h"
#include "services/reinject/queue/queue_service.h"
#include "services/reinject/queue/queue_store.h"

namespace sluice::reinject {

struct QueueHandoffOptions {
  QueueStore* store = nullptr;
  std::vector<std::string> peers;       // ReinjectConfig.handoff_peers
  std::function<int()> own_admin_port;  // this replica's admin port, as bound
  std::shared_ptr<grpc::ChannelCredentials> credentials;  // to peers (admin_tls as client)
  std::string token;                    // to peers (admin_token_file)
  std::string instance;
  HandoffMetrics* metrics = nullptr;
  LimitsSource limits;
  asio::any_io_executor receiver_executor;  // Transfer streams' disk work
  std::function<bool()> accepting;          // false while this replica drains
};

class QueueHandoff final : public HandoffRequests {
 public:
  explicit QueueHandoff(QueueHandoffOptions options);
  ~QueueHandoff();  // Stop()
  QueueHandoff(const QueueHandoff&) = delete;
  QueueHandoff& operator=(const QueueHandoff&) = delete;

  // Starts asking after marked entries (now, then every handoff_resolve_interval_seconds).
  void Start();
  void Stop();

  // Everything to `peer_specs` (empty: the configured peers) within `timeout` (zero: the
  // limit). The caller has stopped receiving and delivering.
  HandoffResult HandOffAll(const std::vector<std::string>& peer_specs, absl::Duration timeout,
                           std::vector<std::string>* peers_used = nullptr);
  // Queue.Move: `ids` (or all) to `to`. Unknown ids go to not_found, the others that do not
  // move to the result's failed.
  absl::StatusOr<HandoffResult> Move(const std::vector<std::string>& ids, bool all, const std::string& to,
                                     absl::Duration timeout, std::vector<std::string>* not_found, std::string* peer);

  const HandoffReceiverContext& receiver() const { return receiver_; }
  bool configured() const { return !options_.peers.empty(); }

  // The Queue service's hand-off calls (queue_service.h).
  grpc::ServerBidiReactor<sluice::v1::QueueTransferRequest, sluice::v1::QueueTransferReply>* OpenTransfer(
      const std::string& peer) override;
  absl::Status Move(const sluice::v1::QueueMoveRequest& request, sluice::v1::QueueMoveResponse* response) override;

 private:
  void ResolveLoop();
  absl::Duration TimeoutOr(absl::Duration timeout) const;
  void UpdateMarkedGauge();

  QueueHandoffOptions options_;
  HandoffSender sender_;
  HandoffReceiverContext receiver_;
  std::mutex run_mu_;  // one hand-off run at a time

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread resolver_;
};

}  // namespace sluice::reinject
