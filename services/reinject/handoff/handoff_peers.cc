// services/reinject/handoff/handoff_peers.cc -- see handoff_peers.h.
#include "services/reinject/handoff/handoff_peers.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "lib/net/host_port.h"
#include "lib/observe/log.h"

namespace sluice::reinject {
namespace {

bool IsLiteral(const std::string& host) {
  unsigned char buf[sizeof(in6_addr)];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

std::string AddressText(const sockaddr* sa) {
  char text[INET6_ADDRSTRLEN] = {};
  if (sa->sa_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, text, sizeof text);
  } else if (sa->sa_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr, text, sizeof text);
  }
  return text;
}

// The addresses of this host's interfaces.
std::set<std::string> OwnAddresses() {
  std::set<std::string> out;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return out;
  for (ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr) continue;
    if (i->ifa_addr->sa_family != AF_INET && i->ifa_addr->sa_family != AF_INET6) continue;
    out.insert(AddressText(i->ifa_addr));
  }
  freeifaddrs(list);
  return out;
}

absl::StatusOr<std::vector<std::string>> Resolve(const std::string& host) {
  if (IsLiteral(host)) return std::vector<std::string>{host};
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  int rc = getaddrinfo(host.c_str(), nullptr, &hints, &res);
  if (rc != 0) return absl::UnavailableError(absl::StrCat("resolve ", host, ": ", gai_strerror(rc)));
  std::set<std::string> seen;
  std::vector<std::string> out;
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    std::string text = AddressText(ai->ai_addr);
    if (!text.empty() && seen.insert(text).second) out.push_back(text);
  }
  freeaddrinfo(res);
  return out;
}

PeerEndpoint Endpoint(const std::string& address, uint16_t port, const std::string& host) {
  PeerEndpoint p;
  bool v6 = address.find(':') != std::string::npos;
  p.label = v6 ? absl::StrCat("[", address, "]:", port) : absl::StrCat(address, ":", port);
  p.grpc_target = absl::StrCat(v6 ? "ipv6:" : "ipv4:", p.label);
  if (!IsLiteral(host)) p.tls_name = host;
  return p;
}

}  // namespace

absl::Status CheckHandoffPeers(const std::vector<std::string>& specs) {
  for (const std::string& spec : specs) {
    auto hp = net::ParseHostPort(spec);
    if (!hp.ok() || hp->host.empty() || hp->port == 0) {
      return absl::InvalidArgumentError(absl::StrCat("handoff_peers: \"", spec, "\" is not HOST:PORT"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<PeerEndpoint>> ResolveHandoffPeers(const std::vector<std::string>& specs,
                                                             int own_admin_port) {
  if (absl::Status s = CheckHandoffPeers(specs); !s.ok()) return s;
  const std::set<std::string> own = OwnAddresses();
  std::vector<PeerEndpoint> peers;
  std::set<std::string> labels;
  for (const std::string& spec : specs) {
    auto hp = net::ParseHostPort(spec);
    auto addresses = Resolve(hp->host);
    if (!addresses.ok()) {
      observe::Warn("handoff_peer_unresolved").Kv("peer", spec).Kv("error", std::string(addresses.status().message()));
      continue;
    }
    for (const std::string& a : *addresses) {
      if (hp->port == own_admin_port && own.contains(a)) continue;  // this replica
      PeerEndpoint p = Endpoint(a, hp->port, hp->host);
      if (labels.insert(p.label).second) peers.push_back(std::move(p));
    }
  }
  return peers;
}

absl::StatusOr<PeerEndpoint> ResolveOnePeer(const std::string& spec) {
  if (absl::Status s = CheckHandoffPeers({spec}); !s.ok()) return s;
  auto hp = net::ParseHostPort(spec);
  auto addresses = Resolve(hp->host);
  if (!addresses.ok()) return addresses.status();
  if (addresses->empty()) return absl::UnavailableError("resolve " + hp->host + ": no address");
  return Endpoint(addresses->front(), hp->port, hp->host);
}

}  // namespace sluice::reinject
