// services/reinject/handoff/queue_handoff.cc -- see queue_handoff.h.
#include "services/reinject/handoff/queue_handoff.h"

#include "absl/strings/str_join.h"
#include "lib/observe/log.h"

namespace sluice::reinject {

QueueHandoff::QueueHandoff(QueueHandoffOptions options)
    : options_(std::move(options)),
      sender_(HandoffSenderOptions{options_.store, options_.credentials, options_.token, options_.instance,
                                   options_.metrics, 64}) {
  receiver_.store = options_.store;
  receiver_.executor = options_.receiver_executor;
  receiver_.accepting = options_.accepting;
  receiver_.instance = options_.instance;
  receiver_.metrics = options_.metrics;
}

QueueHandoff::~QueueHandoff() { Stop(); }

void QueueHandoff::Start() {
  UpdateMarkedGauge();
  resolver_ = std::thread([this] { ResolveLoop(); });
}

void QueueHandoff::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (resolver_.joinable()) resolver_.join();
}

void QueueHandoff::UpdateMarkedGauge() {
  if (options_.metrics != nullptr) options_.metrics->marked->Set(static_cast<double>(options_.store->MarkedCount()));
}

absl::Duration QueueHandoff::TimeoutOr(absl::Duration timeout) const {
  return timeout > absl::ZeroDuration() ? timeout : ResolveQueueLimits(options_.limits).handoff_timeout;
}

void QueueHandoff::ResolveLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    if (options_.store->MarkedCount() > 0) {
      lock.unlock();
      {
        std::lock_guard<std::mutex> run(run_mu_);
        HandoffResult r = sender_.ResolveMarked(absl::Now() + TimeoutOr(absl::ZeroDuration()));
        if (r.stored + r.already_had + r.refused + r.unanswered + r.not_sent > 0) {
          observe::Info("handoff_resolved")
              .Kv("moved", static_cast<uint64_t>(r.moved.size()))
              .Kv("still_marked", static_cast<uint64_t>(options_.store->MarkedCount()))
              .Kv("error", MessageOf(r.error));
        }
      }
      UpdateMarkedGauge();
      lock.lock();
    }
    // With the predicate: a Stop() while the last round ran is not missed.
    cv_.wait_for(lock, absl::ToChronoNanoseconds(ResolveQueueLimits(options_.limits).handoff_resolve_interval),
                 [this] { return stopping_; });
  }
}

HandoffResult QueueHandoff::HandOffAll(const std::vector<std::string>& peer_specs, absl::Duration timeout,
                                       std::vector<std::string>* peers_used) {
  std::lock_guard<std::mutex> run(run_mu_);
  const std::vector<std::string>& specs = peer_specs.empty() ? options_.peers : peer_specs;
  absl::Time deadline = absl::Now() + TimeoutOr(timeout);
  HandoffResult result;
  auto peers = ResolveHandoffPeers(specs, options_.own_admin_port ? options_.own_admin_port() : 0);
  std::vector<std::string> labels;
  if (!peers.ok()) {
    result.error = peers.status();
  } else {
    for (const auto& p : *peers) labels.push_back(p.label);
    observe::Info("handoff_begin")
        .Kv("peers", absl::StrJoin(labels, ","))
        .Kv("entries", static_cast<uint64_t>(options_.store->Ids(sluice::v1::QUEUE_STATE_UNSPECIFIED).size()))
        .Kv("timeout_s", absl::ToInt64Seconds(deadline - absl::Now()));
    result = sender_.HandOffAll(*peers, deadline);
  }
  if (peers_used != nullptr) *peers_used = labels;
  uint64_t left = 0;
  QueueCounters c = options_.store->Counters();
  for (int s = sluice::v1::INCOMING; s <= sluice::v1::HOLD; ++s) left += c.messages[static_cast<size_t>(s)];
  if (left > 0 && absl::Now() >= deadline && options_.metrics != nullptr) options_.metrics->timeouts->Increment();
  observe::Info("handoff_done")
      .Kv("peers", absl::StrJoin(labels, ","))
      .Kv("moved", static_cast<uint64_t>(result.moved.size()))
      .Kv("stored", result.stored)
      .Kv("already_had", result.already_had)
      .Kv("bytes", result.bytes)
      .Kv("left", left)
      .Kv("marked", static_cast<uint64_t>(options_.store->MarkedCount()))
      .Kv("error", MessageOf(result.error));
  UpdateMarkedGauge();
  return result;
}

absl::StatusOr<HandoffResult> QueueHandoff::Move(const std::vector<std::string>& ids, bool all, const std::string& to,
                                                 absl::Duration timeout, std::vector<std::string>* not_found,
                                                 std::string* peer_label) {
  auto peer = ResolveOnePeer(to);
  if (!peer.ok()) return peer.status();
  *peer_label = peer->label;
  std::lock_guard<std::mutex> run(run_mu_);
  std::vector<std::string> skipped;
  std::vector<std::string> taken = options_.store->TakeForHandoff(all ? std::vector<std::string>{} : ids, &skipped);
  HandoffResult result;
  for (const std::string& id : skipped) {
    if (options_.store->Get(id).ok()) {
      result.failed.push_back(id);  // busy, corrupt or marked: not now
    } else {
      not_found->push_back(id);
    }
  }
  observe::Info("handoff_move").Kv("peer", peer->label).Kv("entries", static_cast<uint64_t>(taken.size()));
  result.Add(sender_.Send(*peer, taken, absl::Now() + TimeoutOr(timeout), /*retry=*/false));
  UpdateMarkedGauge();
  return result;
}

grpc::ServerBidiReactor<sluice::v1::QueueTransferRequest, sluice::v1::QueueTransferReply>* QueueHandoff::OpenTransfer(
    const std::string& peer) {
  return new TransferStream(receiver_, peer);
}

absl::Status QueueHandoff::Move(const sluice::v1::QueueMoveRequest& request, sluice::v1::QueueMoveResponse* response) {
  if (request.to().empty() || (request.queue_ids().empty() && !request.all())) {
    return absl::InvalidArgumentError("move needs queue ids (or all) and to=HOST:PORT");
  }
  std::vector<std::string> ids(request.queue_ids().begin(), request.queue_ids().end());
  std::vector<std::string> not_found;
  std::string peer;
  auto moved = Move(ids, request.all(), request.to(), absl::Seconds(request.timeout_seconds()), &not_found, &peer);
  if (!moved.ok()) return moved.status();
  for (const auto& id : moved->moved) response->add_moved(id);
  for (const auto& id : moved->failed) response->add_failed(id);
  for (const auto& id : not_found) response->add_not_found(id);
  response->set_bytes(moved->bytes);
  response->set_peer(peer);
  observe::Info("queue_admin")
      .Kv("action", "move")
      .Kv("all", request.all())
      .Kv("to", peer)
      .Kv("affected", response->moved_size())
      .Kv("failed", response->failed_size())
      .Kv("not_found", response->not_found_size())
      .Kv("error", MessageOf(moved->error));
  // Entries that did not go are listed as failed; a peer that took none of them is an error.
  if (response->moved_size() == 0 && response->failed_size() > 0 && !moved->error.ok()) return moved->error;
  return absl::OkStatus();
}

}  // namespace sluice::reinject
