// lib/control/admin_server.cc -- see admin_server.h.
#include "lib/control/admin_server.h"

#include <utility>

#include "google/protobuf/descriptor.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/server_builder.h"
#include "grpcpp/support/server_interceptor.h"
#include "lib/control/admin_auth.h"
#include "lib/net/host_port.h"
#include "lib/observe/log.h"

namespace sluice::control {
namespace {

using grpc::experimental::InterceptionHookPoints;

// Counts every finished sluice.v1 call by method and status code.
class CallCounter final : public grpc::experimental::Interceptor {
 public:
  CallCounter(ControlMetrics& metrics, const char* method) : metrics_(metrics), method_(method) {}
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      metrics_.CountCall(method_, methods->GetSendStatus().error_code());
    }
    methods->Proceed();
  }

 private:
  ControlMetrics& metrics_;
  const char* method_;  // static storage in the generated code / the server
};

class CallCounterFactory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit CallCounterFactory(ControlMetrics& metrics) : metrics_(metrics) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    std::string_view method = info->method() != nullptr ? info->method() : "";
    if (method.substr(0, 11) != "/sluice.v1.") return nullptr;  // health, reflection
    return new CallCounter(metrics_, info->method());
  }

 private:
  ControlMetrics& metrics_;
};

std::vector<std::string> MethodsOf(const std::string& service_name) {
  std::vector<std::string> methods;
  const google::protobuf::ServiceDescriptor* service =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(service_name);
  if (service == nullptr) return methods;
  for (int i = 0; i < service->method_count(); ++i) methods.push_back(service->method(i)->name());
  return methods;
}

}  // namespace

absl::StatusOr<std::string> GrpcListenAddress(const std::string& listen) {
  auto hp = net::ParseHostPort(listen);
  if (!hp.ok()) {
    return absl::InvalidArgumentError("admin_listen: " + std::string(hp.status().message()));
  }
  std::string host = hp->host.empty() ? "::" : hp->host;
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return host + ":" + std::to_string(hp->port);
}

absl::StatusOr<std::unique_ptr<AdminServer>> AdminServer::Start(StageRuntime& runtime,
                                                                AdminServerOptions options) {
  auto address = GrpcListenAddress(options.listen);
  if (!address.ok()) return address.status();

  std::string token;
  if (!options.token_file.empty()) {
    auto read = AdminAuth::ReadTokenFile(options.token_file);
    if (!read.ok()) return read.status();
    token = *std::move(read);
  }
  ControlMetrics& metrics = runtime.metrics();
  auto auth = std::make_shared<const AdminAuth>(
      std::move(token), std::vector<std::string>{},
      [&metrics](std::string_view method, grpc::StatusCode code) {
        metrics.CountCall(method, code);
      });
  auto credentials = AdminServerCredentials(options.tls, auth);
  if (!credentials.ok()) return credentials.status();

  std::unique_ptr<AdminServer> server(new AdminServer(runtime));
  server->service_ = std::make_unique<AdminService>(runtime);
  server->health_names_ = {"", "sluice.v1.Admin"};

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(*address, *credentials, &server->port_);
  builder.RegisterService(server->service_.get());
  for (const auto& extra : options.extra_services) {
    builder.RegisterService(extra.service);
    metrics.DeclareMethods(MethodsOf(extra.name));
    server->health_names_.push_back(extra.name);
  }
  // A second process on the same admin port is a configuration error, not a load balancer.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // Find dead watchers (a WatchStatus stream on a vanished pod) and let watchers ping us.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(std::make_unique<CallCounterFactory>(metrics));
  builder.experimental().SetInterceptorCreators(std::move(interceptors));

  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || server->port_ == 0) {
    server->server_.reset();
    return absl::UnavailableError("admin_listen " + options.listen + ": cannot listen");
  }
  auto hp = net::ParseHostPort(options.listen);
  server->address_ = (hp->host.empty() ? std::string("0.0.0.0") : hp->host);
  if (server->address_.find(':') != std::string::npos) server->address_ = "[" + server->address_ + "]";
  server->address_ += ":" + std::to_string(server->port_);

  AdminServer* self = server.get();
  server->listener_ = runtime.AddListener([self] { self->UpdateHealth(); });
  server->UpdateHealth();
  observe::Info("admin_listen")
      .Kv("address", server->address_)
      .Kv("tls", !options.tls.cert_file().empty())
      .Kv("mtls", options.tls.require_client_cert())
      .Kv("token", auth->enabled());
  return server;
}

void AdminServer::UpdateHealth() {
  std::lock_guard<std::mutex> lock(mu_);
  bool serving = runtime_.serving();  // read under mu_: concurrent updates apply in order
  if (shut_down_ || health_serving_ == static_cast<int>(serving)) return;
  health_serving_ = serving;
  grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService();
  if (health == nullptr) return;
  for (const std::string& name : health_names_) health->SetServingStatus(name, serving);
}

void AdminServer::Shutdown(absl::Duration grace) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (shut_down_ || server_ == nullptr) return;
    shut_down_ = true;
    // NOT_SERVING for every name; later updates are ignored.
    if (auto* health = server_->GetHealthCheckService()) health->Shutdown();
  }
  runtime_.RemoveListener(listener_);  // waits for a running UpdateHealth
  service_->CloseWatches();
  server_->Shutdown(absl::ToChronoTime(absl::Now() + grace));
  observe::Info("admin_shutdown").Kv("address", address_);
}

AdminServer::~AdminServer() { Shutdown(absl::ZeroDuration()); }

}  // namespace sluice::control
