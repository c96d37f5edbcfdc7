// services/reinject/handoff/handoff_sender.h
//
// The sending side of a queue hand-off (issue 10): whole queue entries -- id, state, record
// (envelope, DSN parameters, original client, arrival, attempts, next attempt, hold reason)
// and content byte for byte -- streamed to a peer replica over sluice.v1.Queue/Transfer, and
// ended here only once the peer has them durably. Per batch of entries (batch_entries):
//
//   1. a hand-off mark naming the peer is written to the log for each (one sync for the
//      batch): from now on the entry is not delivered here, and after a crash it is asked
//      after at that peer before anything else happens to it;
//   2. each is streamed (record, content in 64 KiB pieces, end with its CRC-32);
//   3. the peer answers each once it is synced there (STORED) or if it had it already
//      (ALREADY_HAD: a retried transfer recognised by its id); either way the entry is removed
//      here. REFUSED: the peer certainly does not have it; the mark is cleared and the entry
//      stays. No answer (the stream broke, the deadline passed): the entry stays marked and
//      is asked after later (ResolveMarked, at every start and every resolve_interval).
//
// A peer first says it is ready (a reply without id); a peer that is draining, unreachable
// or refuses the token is never sent anything, so nothing gets marked for it.
//
// Thread-safe: each call runs on the caller's thread (plus one reader thread per stream).
// Never: removes an entry the peer has not confirmed; sends an entry without its mark durable
// first; sends an entry that is busy with something else (delivery, an operator call).
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "grpcpp/security/credentials.h"
#include "services/reinject/handoff/handoff_metrics.h"
#include "services/reinject/handoff/handoff_peers.h"
#include "services/reinject/queue/queue_store.h"

namespace sluice::reinject {

struct HandoffSenderOptions {
  QueueStore* store = nullptr;
  // Client credentials for peers' admin ports (admin_tls as a client; null: plaintext) and
  // the bearer token their mutating calls need (admin_token_file; empty: none).
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  std::string token;
  std::string instance;  // this replica, in the peers' logs
  HandoffMetrics* metrics = nullptr;
  size_t batch_entries = 64;
};

struct HandoffResult {
  uint64_t stored = 0;        // entries the peer took
  uint64_t already_had = 0;   // entries the peer had already (a retry)
  uint64_t refused = 0;       // entries the peer refused: still here, unmarked
  uint64_t unanswered = 0;    // entries sent without an answer: still here, marked
  uint64_t not_sent = 0;      // entries taken but not sent (deadline, a broken stream)
  uint64_t bytes = 0;         // content bytes the peer confirmed
  std::vector<std::string> moved;   // ids that left this queue
  std::vector<std::string> failed;  // ids that did not
  absl::Status error;         // the first stream error, if any
  void Add(const HandoffResult& other);
};

class HandoffSender {
 public:
  explicit HandoffSender(HandoffSenderOptions options);

  // Sends entries the caller took (QueueStore::TakeForHandoff / TakeMarked) to `peer`, in
  // order, until each is answered or `deadline` passes; every id is given back (ended) when
  // it returns. `retry`: they may have been sent before (the peer consults its ledger).
  HandoffResult Send(const PeerEndpoint& peer, const std::vector<std::string>& ids, absl::Time deadline, bool retry);

  // Everything that may go (incoming, active, deferred, hold) to `peers`, split between them;
  // what a failing peer did not take goes to the others. Entries marked by an earlier run go
  // to their own peers first. What is not sent by `deadline` stays.
  HandoffResult HandOffAll(const std::vector<PeerEndpoint>& peers, absl::Time deadline);

  // Entries marked by an earlier run (or a broken stream), each asked after at its peer.
  HandoffResult ResolveMarked(absl::Time deadline);

 private:
  HandoffSenderOptions options_;
};

}  // namespace sluice::reinject
