// services/reinject/config_check.h
//
// Reinject's start-up checks on its config, beyond the schema's: the listen addresses and
// admin files, the queue directory (a writable directory, or one that can be made where a
// writable parent is), mynetworks and xforward_hosts, STARTTLS files, the hold mark key, and
// the delivery route as it would be built (the deliver spec, delivery_tls files). main runs
// them before anything starts; --check runs them and stops (lib/control/config_check.h), never touching
// the queue. A new config field with something to check gets it here.
//
// Never: listens, connects, opens or recovers the queue, or writes anything.
#pragma once

#include "absl/status/status.h"
#include "sluice/v1/config.pb.h"

namespace sluice::reinject {

absl::Status CheckReinjectConfig(const sluice::v1::ReinjectConfig& config);

}  // namespace sluice::reinject
