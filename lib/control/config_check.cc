// lib/control/config_check.cc -- see config_check.h.
#include "lib/control/config_check.h"

#include <memory>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "lib/control/admin_auth.h"
#include "lib/control/admin_server.h"
#include "lib/control/proto_defaults.h"
#include "lib/control/yaml_writer.h"
#include "lib/net/host_port.h"
#include "lib/observe/metrics.h"

namespace sluice::control {

bool CheckRequested(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--check" || a.substr(0, 8) == "--check=") return true;
  }
  return false;
}

absl::Status CheckServerConfig(const sluice::v1::ServerConfig& server) {
  if (auto hp = net::ParseHostPort(server.smtp_listen()); !hp.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("server.smtp_listen: ", hp.status().message()));
  }
  if (!server.admin_listen().empty()) {
    if (auto a = GrpcListenAddress(server.admin_listen()); !a.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("server.", a.status().message()));
    }
  }
  if (!server.metrics_listen().empty()) {
    if (auto m = observe::ExposerBindAddress(server.metrics_listen()); !m.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("server.metrics_listen: ", m.status().message()));
    }
  }
  if (!server.admin_token_file().empty()) {
    if (auto token = AdminAuth::ReadTokenFile(server.admin_token_file()); !token.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("server.", token.status().message()));
    }
  }
  if (auto creds = AdminServerCredentials(server.admin_tls(), nullptr); !creds.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("server.", creds.status().message()));
  }
  return absl::OkStatus();
}

absl::Status CheckHostPorts(const char* key, const google::protobuf::RepeatedPtrField<std::string>& list) {
  for (int i = 0; i < list.size(); ++i) {
    auto hp = net::ParseHostPort(list.Get(i));
    if (!hp.ok() || hp->host.empty() || hp->port == 0) {
      return absl::InvalidArgumentError(absl::StrCat(key, "[", i, "]: \"", list.Get(i), "\" is not HOST:PORT"));
    }
  }
  return absl::OkStatus();
}

int ReportCheck(const FlagTable& table, const google::protobuf::Message& config, CheckMode mode,
                const absl::Status& status, std::ostream& out, std::ostream& err) {
  const std::string program = table.program.empty() ? "sluice" : table.program;
  if (!status.ok()) {
    err << program << ": " << status.message() << "\n";
    return 1;
  }
  std::unique_ptr<google::protobuf::Message> defaults;
  if (mode != CheckMode::kAll) {
    // What the stage runs with when given no file and no flag.
    defaults.reset(config.New());
    ApplyDefaults(defaults.get());
    if (table.finish) table.finish(defaults.get());
  }
  out << "# " << program << " --check" << (mode == CheckMode::kAll ? "=all" : "") << ": the config is valid. "
      << (mode == CheckMode::kAll ? "Every field in force." : "The fields that differ from the defaults (--check=all: every field).")
      << "\n";
  out << ConfigToYaml(config, defaults.get()) << std::flush;
  return 0;
}

}  // namespace sluice::control
