// tools/sluicectl/targets.h
//
// Which admin endpoints a command talks to: the --admin entries, or the default loopback
// endpoint of each --stage (or of every stage; reinject only for queue commands). A HOST that
// is a DNS name stands for every address it resolves to -- a Kubernetes headless Service
// answers with one address per ready replica -- so each address becomes its own target,
// labelled by that address, and TLS still verifies the certificate against the name.
//
// Never: silently drops an entry that does not resolve (it becomes a failed target, which
// the exit code counts); collapses two replicas into one channel.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tools/sluicectl/command_line.h"

namespace sluice::ctl {

struct Target {
  std::string label;          // the replica's address as printed: "10.0.0.5:9101", "[::1]:9101"
  std::string grpc_target;    // what the channel dials: "ipv4:10.0.0.5:9101"
  std::string tls_name;       // the DNS name the server certificate must carry; "" for literals
  std::string stage;          // known for the default endpoints; "" otherwise
  std::string resolve_error;  // set when the name did not resolve: no call is made
};

// The addresses of `host`, each once, in resolver order: the literal itself for an IPv4/IPv6
// literal, else every A/AAAA answer. NOT_FOUND/UNAVAILABLE when the name does not resolve.
absl::StatusOr<std::vector<std::string>> ResolveHost(const std::string& host);

// The default admin endpoint of a stage ("127.0.0.1:9101" for frontend).
std::string DefaultAdminEndpoint(const std::string& stage);

// Every target the invocation addresses, in order (duplicates removed).
std::vector<Target> ResolveTargets(const Invocation& invocation);

// Targets of explicit HOST:PORT entries (already validated by the command line).
std::vector<Target> TargetsForEndpoint(const std::string& host_port, const std::string& stage);

}  // namespace sluice::ctl
