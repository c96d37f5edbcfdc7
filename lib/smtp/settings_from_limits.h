// lib/smtp/settings_from_limits.h
//
// The SMTP dialogue's settings from the Limits in force and the stage's server config, so
// every stage maps each limit to the dialogue the same way.
//
// Never: invents a limit of its own (every bound comes from Limits).
#pragma once

#include <string>

#include "lib/smtp/server_session.h"
#include "sluice/v1/config.pb.h"
#include "sluice/v1/limits.pb.h"

namespace sluice::smtp {

ServerSettings SettingsFromLimits(const sluice::v1::Limits& limits, const sluice::v1::ServerConfig& server,
                                  const std::string& hostname);

}  // namespace sluice::smtp
