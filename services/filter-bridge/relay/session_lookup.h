// services/filter-bridge/relay/session_lookup.h
//
// The full record of the client session this hop belongs to, from the upstream stage that
// owns it (Admin.GetSession by the XFORWARD IDENT), awaited from the session's coroutine
// without blocking its io thread. The record's owner is asked at <peer address>:<admin
// port> (or a fixed upstream_admin); a miss, a timeout or an upstream without the API (a
// Postfix before-filter smtpd) simply yields nothing, and filters then see XFORWARD facts.
//
// Never: fails a transaction; waits longer than its timeout.
#pragma once

#include <optional>
#include <string>

#include "absl/time/time.h"
#include "asio/awaitable.hpp"
#include "lib/control/session_fetcher.h"
#include "sluice/v1/session.pb.h"

namespace sluice::filter_bridge {

class SessionLookup {
 public:
  // upstream_admin: a fixed HOST:PORT, else the peer's address with admin_port.
  SessionLookup(control::SessionFetcher& fetcher, std::string upstream_admin, uint32_t admin_port,
                absl::Duration timeout);

  asio::awaitable<std::optional<sluice::v1::SessionMetadata>> Fetch(std::string peer_address,
                                                                    std::string session_id);

 private:
  std::string AddressFor(const std::string& peer_address) const;

  control::SessionFetcher& fetcher_;
  std::string upstream_admin_;
  uint32_t admin_port_;
  absl::Duration timeout_;
};

}  // namespace sluice::filter_bridge
