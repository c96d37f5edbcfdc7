// lib/control/status_watcher.cc -- see status_watcher.h.
#include "lib/control/status_watcher.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <set>
#include <utility>

#include "grpcpp/client_context.h"
#include "lib/net/host_port.h"
#include "lib/observe/log.h"
#include "sluice/v1/admin.grpc.pb.h"

namespace sluice::control {
namespace {

bool IsIpLiteral(const std::string& host) {
  unsigned char buf[sizeof(in6_addr)];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

// Every address of `hp`, as gRPC targets ("10.0.0.5:9102", "[fd00::5]:9102").
absl::StatusOr<std::vector<std::string>> ResolveAll(const net::HostPort& hp) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  int rc = getaddrinfo(hp.host.c_str(), nullptr, &hints, &res);
  if (rc != 0) {
    return absl::UnavailableError("resolve " + hp.host + ": " + gai_strerror(rc));
  }
  std::set<std::string> out;
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    char text[INET6_ADDRSTRLEN] = {};
    if (ai->ai_family == AF_INET) {
      inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(ai->ai_addr)->sin_addr, text, sizeof text);
      out.insert(std::string(text) + ":" + std::to_string(hp.port));
    } else if (ai->ai_family == AF_INET6) {
      inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(ai->ai_addr)->sin6_addr, text,
                sizeof text);
      out.insert("[" + std::string(text) + "]:" + std::to_string(hp.port));
    }
  }
  freeaddrinfo(res);
  return std::vector<std::string>(out.begin(), out.end());
}

}  // namespace

std::string_view DownstreamName(Downstream d) {
  switch (d) {
    case Downstream::kAccepting: return "accepting";
    case Downstream::kFull: return "full";
    case Downstream::kUnknown: return "unknown";
  }
  return "unknown";
}

struct StatusWatcher::Stream {
  std::string address;
  std::shared_ptr<grpc::Channel> channel;
  std::thread thread;
  // Guarded by the watcher's mu_:
  bool stop = false;
  grpc::ClientContext* context = nullptr;  // the call in progress
  Clock::time_point attempt_at;
  Clock::time_point last_message_at;
  bool established = false;
  sluice::v1::StageStatus last;
  bool has_limits = false;  // GetEffectiveLimits answered at least once
  sluice::v1::EffectiveLimits limits;
};

StatusWatcher::StatusWatcher(StatusWatcherOptions options)
    : options_(std::move(options)),
      stale_after_(std::chrono::duration_cast<Clock::duration>(absl::ToChronoNanoseconds(
          options_.stale_after > absl::ZeroDuration() ? options_.stale_after
                                                      : 2 * options_.interval + absl::Seconds(2)))) {}

StatusWatcher::~StatusWatcher() { Stop(); }

void StatusWatcher::OnChange(std::function<void(Downstream)> callback) {
  on_change_ = std::move(callback);
}

void StatusWatcher::OnLimits(std::function<void(std::vector<DownstreamLimits>)> callback) {
  on_limits_ = std::move(callback);
}

void StatusWatcher::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (started_) return;
  started_ = true;
  manager_ = std::thread([this] { Manage(); });
}

void StatusWatcher::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    for (auto& [address, s] : streams_) {
      s->stop = true;
      if (s->context != nullptr) s->context->TryCancel();
    }
  }
  wake_.notify_all();
  if (manager_.joinable()) manager_.join();
  std::map<std::string, std::shared_ptr<Stream>> streams;
  {
    std::lock_guard<std::mutex> lock(mu_);
    streams.swap(streams_);  // the manager is gone: nothing adds streams any more
  }
  for (auto& [address, s] : streams) {
    if (s->thread.joinable()) s->thread.join();
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    Recompute();
  }
  ReportChange();
}

std::vector<sluice::v1::StageStatus> StatusWatcher::last() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<sluice::v1::StageStatus> out;
  for (const auto& [address, s] : streams_) {
    if (s->established) out.push_back(s->last);
  }
  return out;
}

std::string StatusWatcher::description() const {
  std::string out;
  for (const std::string& t : options_.targets) {
    if (!out.empty()) out += ",";
    out += t;
  }
  return out;
}

size_t StatusWatcher::streams() const {
  std::lock_guard<std::mutex> lock(mu_);
  return streams_.size();
}

void StatusWatcher::Manage() {
  Clock::duration tick = std::min<Clock::duration>(stale_after_ / 4, std::chrono::milliseconds(500));
  auto resolve_every =
      std::chrono::duration_cast<Clock::duration>(absl::ToChronoNanoseconds(options_.resolve_every));
  Clock::time_point next_resolve = Clock::now();
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    if (Clock::now() >= next_resolve) {
      lock.unlock();
      Resolve();  // getaddrinfo blocks: never under mu_
      lock.lock();
      next_resolve = Clock::now() + resolve_every;
      if (stopping_) break;
    }
    CancelStale();
    wake_.wait_for(lock, tick, [this] { return stopping_; });
  }
}

void StatusWatcher::Resolve() {
  std::map<std::string, absl::StatusOr<std::vector<std::string>>> found;
  std::map<std::string, std::string> server_name;  // address -> TLS name
  for (const std::string& target : options_.targets) {
    auto hp = net::ParseHostPort(target);
    if (!hp.ok() || hp->host.empty()) {
      found.emplace(target, absl::InvalidArgumentError("want HOST:PORT"));
      continue;
    }
    auto addresses = ResolveAll(*hp);
    if (addresses.ok() && !IsIpLiteral(hp->host)) {
      for (const auto& a : *addresses) server_name[a] = hp->host;
    }
    found.emplace(target, std::move(addresses));
  }

  std::vector<std::shared_ptr<Stream>> removed;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    for (auto& [target, addresses] : found) {
      if (addresses.ok()) {
        resolved_[target] = *addresses;
      } else if (resolved_.find(target) == resolved_.end()) {
        // Keep the last good answer through a DNS hiccup; say it once when there is none.
        observe::Warn("downstream_resolve_failed")
            .Kv("target", target)
            .Kv("error", std::string(addresses.status().message()));
        resolved_[target] = {};
      }
    }
    std::set<std::string> wanted;
    for (const auto& [target, addresses] : resolved_) wanted.insert(addresses.begin(), addresses.end());
    if (wanted.size() > options_.max_streams) {
      observe::Warn("downstream_too_many_replicas")
          .Kv("addresses", static_cast<uint64_t>(wanted.size()))
          .Kv("watched", static_cast<uint64_t>(options_.max_streams));
      wanted.erase(std::next(wanted.begin(), static_cast<long>(options_.max_streams)), wanted.end());
    }
    for (auto it = streams_.begin(); it != streams_.end();) {
      if (wanted.count(it->first) == 0) {
        it->second->stop = true;
        if (it->second->context != nullptr) it->second->context->TryCancel();
        removed.push_back(it->second);
        it = streams_.erase(it);
      } else {
        ++it;
      }
    }
    for (const std::string& address : wanted) {
      if (streams_.count(address) != 0) continue;
      auto s = std::make_shared<Stream>();
      s->address = address;
      AdminClientOptions client = options_.client;
      if (client.credentials && client.tls_server_name.empty()) client.tls_server_name = server_name[address];
      s->channel = MakeAdminChannel(address, client);
      s->thread = std::thread([this, s] { RunStream(s); });
      streams_.emplace(address, std::move(s));
    }
    if (!removed.empty()) Recompute();
  }
  wake_.notify_all();  // removed streams may sit in backoff
  for (auto& s : removed) s->thread.join();
  if (!removed.empty()) ReportChange();
  if (!removed.empty() && options_.fetch_limits) ReportLimits();
}

void StatusWatcher::CancelStale() {
  Clock::time_point now = Clock::now();
  for (auto& [address, s] : streams_) {
    if (s->context == nullptr) continue;
    Clock::time_point since = s->established ? s->last_message_at : s->attempt_at;
    if (now - since > stale_after_) s->context->TryCancel();
  }
}

void StatusWatcher::RunStream(std::shared_ptr<Stream> s) {
  auto stub = sluice::v1::Admin::NewStub(s->channel);
  auto backoff_initial = std::chrono::duration_cast<Clock::duration>(
      absl::ToChronoNanoseconds(options_.backoff_initial));
  auto backoff_max =
      std::chrono::duration_cast<Clock::duration>(absl::ToChronoNanoseconds(options_.backoff_max));
  Clock::duration backoff = backoff_initial;
  sluice::v1::WatchStatusRequest request;
  request.set_interval_seconds(
      static_cast<uint32_t>(std::max<int64_t>(1, absl::ToInt64Seconds(options_.interval))));
  while (true) {
    grpc::ClientContext context;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (s->stop || stopping_) return;
      s->context = &context;
      s->attempt_at = Clock::now();
    }
    attempts_.fetch_add(1, std::memory_order_relaxed);
    auto reader = stub->WatchStatus(&context, request);
    sluice::v1::StageStatus status;
    while (reader->Read(&status)) {
      bool first;
      {
        std::lock_guard<std::mutex> lock(mu_);
        first = !s->established;
        s->established = true;
        s->last_message_at = Clock::now();
        s->last = status;
        Recompute();
      }
      if (first) {
        observe::Info("downstream_watch_up").Kv("address", s->address).Kv("instance", status.instance());
      }
      backoff = backoff_initial;
      ReportChange();
      // Every status message may follow a change of limits there (UpdateLimits notifies).
      if (options_.fetch_limits) FetchLimits(*stub, s);
    }
    grpc::Status end = reader->Finish();
    bool was_established;
    {
      std::lock_guard<std::mutex> lock(mu_);
      s->context = nullptr;
      was_established = s->established;
      s->established = false;
      Recompute();
    }
    if (was_established) {
      observe::Warn("downstream_watch_lost")
          .Kv("address", s->address)
          .Kv("code", static_cast<int>(end.error_code()))
          .Kv("error", end.error_message());
    }
    ReportChange();
    std::unique_lock<std::mutex> lock(mu_);
    if (wake_.wait_for(lock, backoff, [&] { return s->stop || stopping_; })) return;
    backoff = std::min(backoff * 2, backoff_max);
  }
}

void StatusWatcher::FetchLimits(sluice::v1::Admin::Stub& stub, const std::shared_ptr<Stream>& s) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + options_.limits_timeout));
  sluice::v1::EffectiveLimits limits;
  grpc::Status st = stub.GetEffectiveLimits(&context, sluice::v1::GetEffectiveLimitsRequest(), &limits);
  if (!st.ok()) {
    if (st.error_code() != grpc::StatusCode::UNIMPLEMENTED) {
      observe::Debug("downstream_limits_failed").Kv("address", s->address).Kv("error", st.error_message());
    }
    return;
  }
  bool changed;
  {
    std::lock_guard<std::mutex> lock(mu_);
    changed = !s->has_limits || limits.SerializeAsString() != s->limits.SerializeAsString();
    s->has_limits = true;
    s->limits = std::move(limits);
  }
  if (changed) ReportLimits();
}

void StatusWatcher::ReportLimits() {
  std::lock_guard<std::mutex> report(limits_report_mu_);
  std::vector<DownstreamLimits> all;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [address, stream] : streams_) {
      if (stream->has_limits) all.push_back(DownstreamLimits{address, stream->limits});
    }
  }
  if (on_limits_) on_limits_(std::move(all));
}

void StatusWatcher::Recompute() {
  bool established = false;
  bool accepting = false;
  for (const auto& [address, s] : streams_) {
    if (!s->established) continue;
    established = true;
    if (s->last.state() == sluice::v1::SERVING && s->last.accepting()) accepting = true;
  }
  state_.store(!established ? Downstream::kUnknown
                            : accepting ? Downstream::kAccepting : Downstream::kFull,
               std::memory_order_release);
}

void StatusWatcher::ReportChange() {
  std::lock_guard<std::mutex> lock(report_mu_);
  Downstream now = state();
  if (now == reported_) return;
  reported_ = now;
  observe::Info("downstream_state").Kv("targets", description()).Kv("state", DownstreamName(now));
  if (on_change_) on_change_(now);
}

}  // namespace sluice::control
