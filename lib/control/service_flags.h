// lib/control/service_flags.h
//
// The flag tables of the three service binaries (DESIGN.md "CLI contract"), so each main is
// a few lines: parse onto its config message, then run. The flags every stage shares
// (--smtp_listen, --admin_listen, --metrics_listen, --hostname; flags.h adds --config,
// --log_level and --help) come from CommonServerFlags(); each stage adds its own. Each
// table's `finish` fills the run-time defaults of ServerConfig for that stage:
//
//   stage          smtp_listen                admin_listen     metrics_listen
//   frontend       :25 (:2525 when not root)  127.0.0.1:9101   127.0.0.1:9201
//   filter-bridge  127.0.0.1:10025            127.0.0.1:9102   127.0.0.1:9202
//   reinject       127.0.0.1:10026            127.0.0.1:9103   127.0.0.1:9203
//
// and hostname (DefaultHostname()) and instance (the stage name) when empty. The internal
// stages and every admin port default to loopback; deploy/k8s/base/config/ opens them to the
// pod network explicitly.
//
// Never: holds a default the schema can express (those are (default_value) options).
#pragma once

#include "lib/control/flags.h"

namespace sluice::control {

FlagTable CommonServerFlags();

FlagTable FrontendFlags();      // sluice-frontend, onto sluice::v1::FrontendConfig
FlagTable FilterBridgeFlags();  // sluice-filter-bridge, onto sluice::v1::FilterBridgeConfig
FlagTable ReinjectFlags();      // sluice-reinject, onto sluice::v1::ReinjectConfig

}  // namespace sluice::control
