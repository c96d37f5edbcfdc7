// lib/control/service_flags.cc -- see service_flags.h.
#include "lib/control/service_flags.h"

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "lib/control/hostname.h"
#include "lib/net/host_port.h"
#include "lib/status/status_macros.h"
#include "sluice/v1/config.pb.h"

namespace sluice::control {
namespace {

using google::protobuf::Message;
using sluice::v1::FilterBridgeConfig;
using sluice::v1::FilterConfig;
using sluice::v1::ServerConfig;

absl::string_view AV(std::string_view s) { return absl::string_view(s.data(), s.size()); }

Flag FieldFlag(std::string name, std::string value_name, std::string path, std::string help) {
  Flag f;
  f.name = std::move(name);
  f.value_name = std::move(value_name);
  f.field_path = std::move(path);
  f.help = std::move(help);
  return f;
}

Flag HostPortFlag(std::string name, std::string path, std::string help) {
  Flag f = FieldFlag(std::move(name), "HOST:PORT", std::move(path), std::move(help));
  f.check = CheckHostPort;
  return f;
}

// Fills what ServerConfig cannot default in the schema, for one stage.
std::function<void(Message*)> ServerDefaults(std::string instance, std::function<std::string()> smtp_listen,
                                             std::string admin_listen, std::string metrics_listen) {
  return [=](Message* config) {
    const auto* field = config->GetDescriptor()->FindFieldByName("server");
    if (field == nullptr) return;
    auto* server = google::protobuf::DynamicCastToGenerated<ServerConfig>(
        config->GetReflection()->MutableMessage(config, field));
    if (server == nullptr) return;
    if (server->smtp_listen().empty()) server->set_smtp_listen(smtp_listen());
    if (server->admin_listen().empty()) server->set_admin_listen(admin_listen);
    if (server->metrics_listen().empty()) server->set_metrics_listen(metrics_listen);
    if (server->hostname().empty()) server->set_hostname(DefaultHostname());
    if (server->instance().empty()) server->set_instance(instance);
  };
}

// "milter-1", "milter-2", ...: the first name no filter of the chain has yet.
std::string UniqueFilterName(const FilterBridgeConfig& config, const std::string& base, bool bare_first) {
  for (int n = 1;; ++n) {
    std::string name = (n == 1 && bare_first) ? base : absl::StrCat(base, "-", n);
    bool taken = false;
    for (const FilterConfig& f : config.filters()) taken = taken || f.name() == name;
    if (!taken) return name;
  }
}

absl::StatusOr<FilterBridgeConfig*> AsFilterBridge(Message* config) {
  auto* fb = google::protobuf::DynamicCastToGenerated<FilterBridgeConfig>(config);
  if (fb == nullptr) return absl::InternalError("this flag needs a FilterBridgeConfig");
  return fb;
}

absl::Status CheckMilterAddress(std::string_view value) {
  if (absl::StartsWith(AV(value), "inet:")) return net::ParseHostPort(value.substr(5)).status();
  if (absl::StartsWith(AV(value), "unix:") && value.size() > 5) return absl::OkStatus();
  return absl::InvalidArgumentError("expected inet:HOST:PORT or unix:/PATH");
}

absl::Status CheckDeliver(std::string_view value) {
  if (absl::StartsWith(AV(value), "maildir:") && value.size() > 8) return absl::OkStatus();
  if (absl::StartsWith(AV(value), "smtp:") || absl::StartsWith(AV(value), "lmtp:")) {
    return net::ParseHostPort(value.substr(5)).status();
  }
  if (value == "discard" || absl::StartsWith(AV(value), "discard:")) return absl::OkStatus();
  return absl::InvalidArgumentError("expected maildir:DIR, smtp:HOST:PORT, lmtp:HOST:PORT or discard[:TEXT]");
}

absl::Status AddRulesFilter(Message* config, std::string_view file) {
  SLUICE_ASSIGN_OR_RETURN(FilterBridgeConfig * fb, AsFilterBridge(config));
  if (file.empty()) return absl::InvalidArgumentError("needs a file name");
  std::string name = UniqueFilterName(*fb, "rules", true);
  FilterConfig* f = fb->add_filters();
  f->set_name(name);
  f->mutable_rules()->set_file(std::string(file));
  return absl::OkStatus();
}

absl::Status AddMilterFilter(Message* config, std::string_view address) {
  SLUICE_ASSIGN_OR_RETURN(FilterBridgeConfig * fb, AsFilterBridge(config));
  std::string name = UniqueFilterName(*fb, "milter", false);
  FilterConfig* f = fb->add_filters();
  f->set_name(name);
  f->mutable_milter()->set_address(std::string(address));
  return absl::OkStatus();
}

absl::Status AddGrpcFilter(Message* config, std::string_view address) {
  SLUICE_ASSIGN_OR_RETURN(FilterBridgeConfig * fb, AsFilterBridge(config));
  std::string name = UniqueFilterName(*fb, "grpc", false);
  FilterConfig* f = fb->add_filters();
  f->set_name(name);
  f->mutable_grpc()->set_address(std::string(address));
  return absl::OkStatus();
}

Flag HandlerFlag(std::string name, std::string value_name, FlagHandler handler, std::string help,
                 std::function<absl::Status(std::string_view)> check, bool repeatable) {
  Flag f;
  f.name = std::move(name);
  f.value_name = std::move(value_name);
  f.handler = std::move(handler);
  f.help = std::move(help);
  f.check = std::move(check);
  f.repeatable = repeatable;
  return f;
}

std::string LoopbackSmtp(int port) { return absl::StrCat("127.0.0.1:", port); }

}  // namespace

FlagTable CommonServerFlags() {
  FlagTable t;
  t.flags = {
      HostPortFlag("smtp_listen", "server.smtp_listen", "Address the SMTP listener binds."),
      HostPortFlag("admin_listen", "server.admin_listen",
                   "Address of the gRPC admin and health server (keep it off the Internet)."),
      HostPortFlag("metrics_listen", "server.metrics_listen", "Address of the Prometheus /metrics endpoint."),
      FieldFlag("hostname", "NAME", "server.hostname",
                "The name in the SMTP banner, EHLO and Received: (myhostname; default: this host's name)."),
  };
  return t;
}

FlagTable FrontendFlags() {
  FlagTable t = CommonServerFlags();
  t.program = "sluice-frontend";
  t.summary =
      "The public SMTP stage: admission, limits and ESMTP, relaying each transaction to the "
      "filter stage as Postfix smtpd_proxy_filter does.";
  t.flags[0].default_text = ":25 (:2525 when not root)";
  t.flags[1].default_text = "127.0.0.1:9101";
  t.flags[2].default_text = "127.0.0.1:9201";
  Flag filter = HostPortFlag("filter", "filter", "The proxy filter: any SMTP server (smtpd_proxy_filter).");
  t.flags.push_back(std::move(filter));
  t.flags.push_back(FieldFlag("max_sessions", "N", "limits.max_sessions",
                              "Concurrent SMTP sessions; beyond it new connections get 421."));
  t.flags.push_back(FieldFlag("per_client_connection_limit", "N", "limits.per_client_connection_limit",
                              "Concurrent sessions from one client address; 0: no limit."));
  t.flags.push_back(FieldFlag("proxy_timeout", "DURATION", "limits.proxy_timeout_seconds",
                              "Time the filter may take to answer (100s, 2m, or seconds)."));
  t.flags.push_back(FieldFlag("message_size_limit", "BYTES", "limits.message_size_limit_bytes",
                              "Largest message accepted; 0: no limit."));
  t.flags.push_back(FieldFlag("mynetworks", "CIDR[,CIDR]", "mynetworks",
                              "Clients that may relay to any domain (replaces the config file's list)."));
  t.flags.push_back(FieldFlag("accepted_domains", "DOMAIN[,DOMAIN]", "accepted_domains",
                              "Recipient domains accepted from anyone; \".example.com\" means its subdomains."));
  t.flags.push_back(FieldFlag("verify_recipients", "true|false", "verify_recipients",
                              "Refuse unknown recipients at RCPT by asking the final destination through "
                              "reinject's Verify service (reject_unverified_recipient)."));
  t.flags.push_back(HostPortFlag("verify_service", "verify_service",
                                 "Admin address of the reinject stage serving sluice.v1.Verify."));
  t.flags.push_back(FieldFlag("shared_limits", "redis://HOST:PORT[/DB]", "shared_limits",
                              "Count per-client connections and rates in this Redis, shared by every "
                              "frontend replica naming it."));
  t.finish = ServerDefaults("frontend", [] { return DefaultSmtpListen(25, 2525); }, "127.0.0.1:9101",
                            "127.0.0.1:9201");
  return t;
}

FlagTable FilterBridgeFlags() {
  FlagTable t = CommonServerFlags();
  t.program = "sluice-filter-bridge";
  t.summary =
      "The content-filter stage: runs each message through the filter chain (rules, milters, "
      "gRPC filters) and relays it to the next hop, or returns the filter's rejection.";
  t.flags[0].default_text = "127.0.0.1:10025";
  t.flags[1].default_text = "127.0.0.1:9102";
  t.flags[2].default_text = "127.0.0.1:9202";
  t.flags.push_back(HostPortFlag("next_hop", "next_hop", "The after-filter SMTP server: any SMTP server."));
  t.flags.push_back(HandlerFlag("rules", "FILE", AddRulesFilter,
                                "Add a built-in rules filter reading its rules from FILE (YAML).",
                                nullptr, false));
  t.flags.push_back(HandlerFlag("milter", "inet:HOST:PORT", AddMilterFilter,
                                "Add a milter (rspamd, ClamAV, OpenDKIM) to the chain; unix:/PATH for a socket.", CheckMilterAddress,
                                true));
  t.flags.push_back(HandlerFlag("grpc_filter", "HOST:PORT", AddGrpcFilter,
                                "Add an external sluice.v1.ContentFilter to the chain.", CheckHostPort, true));
  t.finish = ServerDefaults("filter-bridge", [] { return LoopbackSmtp(10025); }, "127.0.0.1:9102",
                            "127.0.0.1:9202");
  return t;
}

FlagTable ReinjectFlags() {
  FlagTable t = CommonServerFlags();
  t.program = "sluice-reinject";
  t.summary =
      "The after-filter smtpd and the queue: writes each message durably before it answers "
      "250, then delivers it (Maildir, SMTP, LMTP or discard) with retries and bounces.";
  t.flags[0].default_text = "127.0.0.1:10026";
  t.flags[1].default_text = "127.0.0.1:9103";
  t.flags[2].default_text = "127.0.0.1:9203";
  t.flags.push_back(FieldFlag("queue_dir", "DIR", "queue_dir", "The queue directory."));
  Flag deliver = FieldFlag("deliver", "maildir:DIR|smtp:HOST:PORT|lmtp:HOST:PORT|discard[:TEXT]", "deliver",
                           "Where queued mail goes.");
  deliver.check = CheckDeliver;
  t.flags.push_back(std::move(deliver));
  t.flags.push_back(FieldFlag("mynetworks", "CIDR[,CIDR]", "mynetworks",
                              "Clients that may relay through this stage."));
  t.flags.push_back(FieldFlag("xforward_hosts", "CIDR[,CIDR]", "xforward_hosts",
                              "Peers whose XFORWARD attributes are honoured."));
  t.flags.push_back(FieldFlag("handoff_peers", "HOST:PORT[,HOST:PORT]", "handoff_peers",
                              "Admin endpoints of the replicas this one hands its queue to on SIGTERM."));
  t.finish = ServerDefaults("reinject", [] { return LoopbackSmtp(10026); }, "127.0.0.1:9103",
                            "127.0.0.1:9203");
  return t;
}

}  // namespace sluice::control
