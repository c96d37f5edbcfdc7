// services/filter-bridge/config_check.h
//
// The filter-bridge's start-up checks on its config, beyond the schema's: the listen
// addresses and admin files, the next hop and next_hop_tls files, mynetworks and
// xforward_hosts, STARTTLS files, the next_hop_admin and upstream_admin addresses, and the
// whole filter chain as it would be built (rules files and patterns, milter and gRPC filter
// addresses). main runs them before anything starts; --check runs them and stops
// (lib/control/config_check.h). A new config field with something to check gets it here.
//
// Never: listens, connects or writes; reports an error without the key it concerns.
#pragma once

#include "absl/status/status.h"
#include "sluice/v1/config.pb.h"

namespace sluice::filter_bridge {

absl::Status CheckFilterBridgeConfig(const sluice::v1::FilterBridgeConfig& config);

}  // namespace sluice::filter_bridge
