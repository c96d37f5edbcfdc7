// services/frontend/config_check.h
//
// The frontend's start-up checks on its config, beyond the schema's (flags.h/proto_defaults.h
// already checked keys, types and bounds): the listen addresses and admin files, the filter
// address and filter_tls files, mynetworks/accepted_domains, PROXY peers, STARTTLS files, the
// filter_admin watch addresses, the shared_limits Redis URL, recipient verification and the restriction lists (access
// tables loaded, policy services, DNS blocklists). main runs them before anything
// starts; --check runs them and stops (lib/control/config_check.h). A new config field with
// something to check gets its check here.
//
// Never: listens, connects or writes; reports an error without the key it concerns.
#pragma once

#include "absl/status/status.h"
#include "sluice/v1/config.pb.h"

namespace sluice::frontend {

absl::Status CheckFrontendConfig(const sluice::v1::FrontendConfig& config);

}  // namespace sluice::frontend
