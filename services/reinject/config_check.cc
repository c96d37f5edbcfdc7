// services/reinject/config_check.cc -- see config_check.h.
#include "services/reinject/config_check.h"

#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "asio/io_context.hpp"
#include "lib/control/config_check.h"
#include "lib/net/cidr.h"
#include "lib/smtp/hold_mark.h"
#include "lib/smtp/tls_context.h"
#include "services/reinject/delivery/agent_factory.h"
#include "services/reinject/handoff/handoff_peers.h"

namespace sluice::reinject {
namespace {

absl::Status Named(const char* key, const absl::Status& st) {
  return absl::Status(st.code(), absl::StrCat(key, ": ", st.message()));
}

bool IsDir(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// The queue directory is usable, or the nearest existing ancestor lets it be made.
absl::Status CheckQueueDir(const std::string& dir) {
  if (dir.empty()) return absl::InvalidArgumentError("queue_dir: empty");
  std::string path = dir;
  while (true) {
    struct stat st;
    if (::stat(path.c_str(), &st) == 0) {
      if (!S_ISDIR(st.st_mode)) {
        return absl::InvalidArgumentError(absl::StrCat("queue_dir: ", path, " is not a directory"));
      }
      if (::access(path.c_str(), W_OK | X_OK) != 0) {
        return absl::InvalidArgumentError(absl::StrCat("queue_dir: ", path, " is not writable"));
      }
      return absl::OkStatus();
    }
    size_t slash = path.find_last_of('/');
    if (slash == std::string::npos) return IsDir(".") ? absl::OkStatus() : absl::InvalidArgumentError("queue_dir: no parent");
    path = slash == 0 ? "/" : path.substr(0, slash);
  }
}

}  // namespace

absl::Status CheckReinjectConfig(const sluice::v1::ReinjectConfig& config) {
  if (absl::Status st = control::CheckServerConfig(config.server()); !st.ok()) return st;
  if (auto tls = smtp::MakeServerTlsContext(config.server().smtp_tls()); !tls.ok()) {
    return Named("server.smtp_tls", tls.status());
  }
  if (absl::Status st = CheckQueueDir(config.queue_dir()); !st.ok()) return st;
  if (auto nets = net::CidrSet::Parse({config.mynetworks().begin(), config.mynetworks().end()}); !nets.ok()) {
    return Named("mynetworks", nets.status());
  }
  if (auto hosts = net::CidrSet::Parse({config.xforward_hosts().begin(), config.xforward_hosts().end()}); !hosts.ok()) {
    return Named("xforward_hosts", hosts.status());
  }
  // Each HOST:PORT with a port (names are resolved at the hand-off, not now).
  if (absl::Status st = CheckHandoffPeers({config.handoff_peers().begin(), config.handoff_peers().end()}); !st.ok()) {
    return st;
  }
  if (!config.hold_mark_key_file().empty()) {
    if (auto key = smtp::HoldMarkKey::Load(config.hold_mark_key_file()); !key.ok()) {
      std::string text(key.status().message());
      return absl::Status(key.status().code(),
                          text.rfind("hold_mark_key_file", 0) == 0 ? text : absl::StrCat("hold_mark_key_file: ", text));
    }
  }
  // The agent as main builds it (spec parsed, delivery_tls loaded); it connects nowhere.
  asio::io_context unused;
  AgentContext context;
  context.hostname = config.delivery_ehlo().empty() ? config.server().hostname() : config.delivery_ehlo();
  context.blocking = unused.get_executor();
  context.tls = config.delivery_tls();
  auto agent = MakeDeliveryAgent(config.deliver(), context);
  if (!agent.ok()) {
    std::string text(agent.status().message());
    return absl::Status(agent.status().code(), text.rfind("deliver", 0) == 0 ? text : absl::StrCat("deliver: ", text));
  }
  return absl::OkStatus();
}

}  // namespace sluice::reinject
