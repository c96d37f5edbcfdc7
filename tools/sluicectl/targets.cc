// tools/sluicectl/targets.cc -- see targets.h.
#include "tools/sluicectl/targets.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "lib/net/host_port.h"

namespace sluice::ctl {
namespace {

bool IsIpv4(const std::string& host) {
  in_addr a{};
  return inet_pton(AF_INET, host.c_str(), &a) == 1;
}

bool IsIpv6(const std::string& host) {
  in6_addr a{};
  return inet_pton(AF_INET6, host.c_str(), &a) == 1;
}

Target AddressTarget(const std::string& address, uint16_t port, const std::string& tls_name,
                     const std::string& stage) {
  Target t;
  const bool v6 = address.find(':') != std::string::npos;
  t.label = v6 ? absl::StrCat("[", address, "]:", port) : absl::StrCat(address, ":", port);
  t.grpc_target = absl::StrCat(v6 ? "ipv6:" : "ipv4:", t.label);
  t.tls_name = tls_name;
  t.stage = stage;
  return t;
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ResolveHost(const std::string& host) {
  if (IsIpv4(host) || IsIpv6(host)) return std::vector<std::string>{host};
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* result = nullptr;
  int rc = getaddrinfo(host.c_str(), nullptr, &hints, &result);
  if (rc != 0) {
    std::string why = gai_strerror(rc);
    if (rc == EAI_NONAME) return absl::NotFoundError(absl::StrCat("cannot resolve ", host, ": ", why));
    return absl::UnavailableError(absl::StrCat("cannot resolve ", host, ": ", why));
  }
  std::vector<std::string> addresses;
  for (addrinfo* ai = result; ai != nullptr; ai = ai->ai_next) {
    char text[INET6_ADDRSTRLEN] = {};
    const void* raw = nullptr;
    if (ai->ai_family == AF_INET) {
      raw = &reinterpret_cast<const sockaddr_in*>(ai->ai_addr)->sin_addr;
    } else if (ai->ai_family == AF_INET6) {
      raw = &reinterpret_cast<const sockaddr_in6*>(ai->ai_addr)->sin6_addr;
    } else {
      continue;
    }
    if (inet_ntop(ai->ai_family, raw, text, sizeof text) == nullptr) continue;
    if (std::find(addresses.begin(), addresses.end(), text) == addresses.end()) addresses.emplace_back(text);
  }
  freeaddrinfo(result);
  if (addresses.empty()) return absl::NotFoundError(absl::StrCat("cannot resolve ", host, ": no addresses"));
  return addresses;
}

std::string DefaultAdminEndpoint(const std::string& stage) {
  if (stage == "frontend") return "127.0.0.1:9101";
  if (stage == "filter-bridge") return "127.0.0.1:9102";
  return "127.0.0.1:9103";
}

std::vector<Target> TargetsForEndpoint(const std::string& host_port, const std::string& stage) {
  auto hp = sluice::net::ParseHostPort(host_port);
  if (!hp.ok()) {
    Target t;
    t.label = host_port;
    t.stage = stage;
    t.resolve_error = std::string(hp.status().message());
    return {t};
  }
  const bool literal = IsIpv4(hp->host) || IsIpv6(hp->host);
  auto addresses = ResolveHost(hp->host);
  if (!addresses.ok()) {
    Target t;
    t.label = host_port;
    t.stage = stage;
    t.resolve_error = std::string(addresses.status().message());
    return {t};
  }
  std::vector<Target> targets;
  for (const std::string& address : *addresses) {
    targets.push_back(AddressTarget(address, hp->port, literal ? "" : hp->host, stage));
  }
  return targets;
}

std::vector<Target> ResolveTargets(const Invocation& invocation) {
  std::vector<Target> all;
  auto add = [&](std::vector<Target> more) {
    for (Target& t : more) {
      auto same = [&](const Target& o) { return o.label == t.label && o.resolve_error.empty() == t.resolve_error.empty(); };
      if (std::none_of(all.begin(), all.end(), same)) all.push_back(std::move(t));
    }
  };
  const GlobalOptions& g = invocation.global;
  if (!g.admin.empty()) {
    for (const std::string& entry : g.admin) add(TargetsForEndpoint(entry, ""));
    return all;
  }
  std::vector<std::string> stages = g.stages;
  if (stages.empty()) {
    if (IsQueueCommand(invocation.command)) {
      stages = {"reinject"};
    } else {
      stages.assign(std::begin(kStageNames), std::end(kStageNames));
    }
  }
  for (const std::string& stage : stages) add(TargetsForEndpoint(DefaultAdminEndpoint(stage), stage));
  return all;
}

}  // namespace sluice::ctl
