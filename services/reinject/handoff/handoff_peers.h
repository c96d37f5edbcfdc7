// services/reinject/handoff/handoff_peers.h
//
// Who this replica hands its queue to (ReinjectConfig.handoff_peers, --handoff_peers):
// admin endpoints HOST:PORT of other reinject replicas. A HOST that is a DNS name means every
// address it resolves to -- a Kubernetes headless Service gives one per ready pod, this one
// among them -- except this replica's own: an address of one of this host's interfaces with
// this replica's admin port. Resolved when a hand-off begins (the peers of the moment), not
// at start.
//
// Never: lists this replica as its own peer; stops at a name that does not resolve (it is
// logged and the other peers are used).
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace sluice::reinject {

struct PeerEndpoint {
  std::string label;        // "10.0.0.7:9103", "[fd00::7]:9103": logs, hand-off marks
  std::string grpc_target;  // "ipv4:10.0.0.7:9103"
  std::string tls_name;     // the DNS name the peer's certificate carries ("" for a literal)
};

// The peers of `specs` (each HOST:PORT) now; `own_admin_port` is this replica's admin port.
// Bad specs are INVALID_ARGUMENT (checked at start too).
absl::StatusOr<std::vector<PeerEndpoint>> ResolveHandoffPeers(const std::vector<std::string>& specs,
                                                             int own_admin_port);

// One endpoint as given by an operator (queue move --to=HOST:PORT): the first address.
absl::StatusOr<PeerEndpoint> ResolveOnePeer(const std::string& spec);

// INVALID_ARGUMENT naming the first spec that is not HOST:PORT with a port.
absl::Status CheckHandoffPeers(const std::vector<std::string>& specs);

}  // namespace sluice::reinject
