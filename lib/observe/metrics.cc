// lib/observe/metrics.cc -- see metrics.h.
#include "lib/observe/metrics.h"

#include <cstddef>
#include <exception>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "prometheus/exposer.h"

namespace sluice::observe {
namespace {

template <typename Metric>
prometheus::Family<Metric>& BuildFamily(prometheus::Registry& registry, const std::string& name,
                                        const std::string& help) {
  if constexpr (std::is_same_v<Metric, prometheus::Counter>) {
    CheckMetricName(name, /*counter=*/true);
    return prometheus::BuildCounter().Name(name).Help(help).Register(registry);
  } else if constexpr (std::is_same_v<Metric, prometheus::Gauge>) {
    CheckMetricName(name, /*counter=*/false);
    return prometheus::BuildGauge().Name(name).Help(help).Register(registry);
  } else {
    static_assert(std::is_same_v<Metric, prometheus::Histogram>);
    CheckMetricName(name, /*counter=*/false);
    return prometheus::BuildHistogram().Name(name).Help(help).Register(registry);
  }
}

std::string ChildKey(const std::vector<std::string_view>& values) {
  std::string key;
  for (std::string_view v : values) {
    key.append(v);
    key.push_back('\x1f');
  }
  return key;
}

}  // namespace

absl::StatusOr<std::string> ExposerBindAddress(std::string_view listen) {
  size_t colon = listen.rfind(':');
  if (colon == std::string_view::npos) {
    return absl::InvalidArgumentError("metrics_listen: want HOST:PORT, got \"" +
                                      std::string(listen) + "\"");
  }
  std::string_view host = listen.substr(0, colon);
  std::string_view port = listen.substr(colon + 1);
  if (port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string_view::npos ||
      std::stoul(std::string(port)) > 65535) {
    return absl::InvalidArgumentError("metrics_listen: bad port in \"" + std::string(listen) +
                                      "\"");
  }
  if (host.empty() || host == "*") return std::string(port);  // every address
  if (host.front() == '[') {
    if (host.back() != ']') {
      return absl::InvalidArgumentError("metrics_listen: unclosed '[' in \"" +
                                        std::string(listen) + "\"");
    }
    return std::string(listen);  // civetweb takes [v6]:port as is
  }
  if (host.find(':') != std::string_view::npos) {
    return absl::InvalidArgumentError("metrics_listen: IPv6 address needs brackets: \"" +
                                      std::string(listen) + "\"");
  }
  return std::string(listen);
}

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(
    std::string_view listen, std::shared_ptr<prometheus::Registry> registry) {
  auto bind = ExposerBindAddress(listen);
  if (!bind.ok()) return bind.status();
  std::unique_ptr<MetricsServer> server(new MetricsServer());
  server->registry_ = std::move(registry);
  try {
    // One thread serves scrapes; a second lets a slow scraper not block the next one.
    server->exposer_ = std::make_unique<prometheus::Exposer>(*bind, 2);
  } catch (const std::exception& e) {
    return absl::UnavailableError("metrics_listen " + std::string(listen) +
                                  ": cannot listen: " + e.what());
  }
  server->exposer_->RegisterCollectable(server->registry_);
  std::vector<int> ports = server->exposer_->GetListeningPorts();
  if (ports.empty()) {
    return absl::UnavailableError("metrics_listen " + std::string(listen) + ": no port bound");
  }
  server->port_ = static_cast<uint16_t>(ports.front());
  return server;
}

MetricsServer::~MetricsServer() = default;

void CheckMetricName(std::string_view name, bool counter) {
  auto fail = [&](const char* why) {
    throw std::invalid_argument("metric name \"" + std::string(name) + "\": " + why);
  };
  if (name.substr(0, 7) != "sluice_") fail("must start with sluice_");
  if (name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_") != std::string_view::npos) {
    fail("only [a-z0-9_] allowed");
  }
  bool total = name.size() > 6 && name.substr(name.size() - 6) == "_total";
  if (counter && !total) fail("a counter ends in _total");
  if (!counter && total) fail("only counters end in _total");
}

prometheus::Counter& AddCounter(prometheus::Registry& registry, const std::string& name,
                                const std::string& help) {
  return BuildFamily<prometheus::Counter>(registry, name, help).Add({});
}

prometheus::Gauge& AddGauge(prometheus::Registry& registry, const std::string& name,
                            const std::string& help) {
  return BuildFamily<prometheus::Gauge>(registry, name, help).Add({});
}

prometheus::Histogram& AddHistogram(prometheus::Registry& registry, const std::string& name,
                                    const std::string& help,
                                    const prometheus::Histogram::BucketBoundaries& buckets) {
  return BuildFamily<prometheus::Histogram>(registry, name, help).Add({}, buckets);
}

prometheus::Histogram::BucketBoundaries LatencyBucketsSeconds() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
          1,     2.5,    5,     10,   30,    60,   120, 300};
}

template <typename Metric>
Labelled<Metric>::Labelled(prometheus::Registry& registry, const std::string& name,
                           const std::string& help, std::vector<LabelSet> labels,
                           prometheus::Histogram::BucketBoundaries buckets)
    : family_(BuildFamily<Metric>(registry, name, help)),
      labels_(std::move(labels)),
      buckets_(std::move(buckets)) {
  for (const LabelSet& l : labels_) {
    // A label with no values yet (a filter chain with no filters) has no children to make:
    // the family stays empty until at() names one.
    if (l.values.empty()) return;
  }
  // Every combination, odometer style.
  std::vector<size_t> index(labels_.size(), 0);
  std::vector<std::string_view> values(labels_.size());
  while (true) {
    for (size_t i = 0; i < labels_.size(); ++i) values[i] = labels_[i].values[index[i]];
    Create(values);
    size_t i = labels_.size();
    while (i > 0) {
      --i;
      if (++index[i] < labels_[i].values.size()) break;
      index[i] = 0;
      if (i == 0) return;
    }
    if (labels_.empty()) return;
  }
}

template <typename Metric>
Metric& Labelled<Metric>::at(std::initializer_list<std::string_view> values) {
  return at(std::vector<std::string_view>(values));
}

template <typename Metric>
Metric& Labelled<Metric>::at(const std::vector<std::string_view>& values) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = children_.find(ChildKey(values));
    if (it != children_.end()) return *it->second;
  }
  return Create(values);
}

template <typename Metric>
Metric& Labelled<Metric>::Create(const std::vector<std::string_view>& values) {
  if (values.size() != labels_.size()) {
    throw std::invalid_argument("metric label count mismatch");
  }
  prometheus::Labels labels;
  for (size_t i = 0; i < values.size(); ++i) labels[labels_[i].name] = std::string(values[i]);
  Metric* metric;
  if constexpr (std::is_same_v<Metric, prometheus::Histogram>) {
    metric = &family_.Add(labels, buckets_);
  } else {
    metric = &family_.Add(labels);
  }
  std::lock_guard<std::mutex> lock(mu_);
  children_.emplace(ChildKey(values), metric);
  return *metric;
}

template class Labelled<prometheus::Counter>;
template class Labelled<prometheus::Gauge>;
template class Labelled<prometheus::Histogram>;

}  // namespace sluice::observe
