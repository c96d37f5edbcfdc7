// lib/observe/metrics.h
//
// The Prometheus side of a stage: one shared registry per process, served over HTTP
// `/metrics` by MetricsServer (prometheus-cpp Exposer), and the helpers with which a
// component declares all of its metrics in ONE struct, Envoy style:
//
//   struct ProxyMetrics {
//     explicit ProxyMetrics(prometheus::Registry& r)
//         : sessions(AddGauge(r, "sluice_frontend_sessions_active", "Client sessions open.")),
//           replies(r, "sluice_frontend_replies_total", "Replies sent.",
//                   {{"class", {"2xx", "4xx", "5xx"}}}) {}
//     prometheus::Gauge& sessions;
//     Labelled<prometheus::Counter> replies;   // replies.at({"4xx"}).Increment();
//   };
//
// Names follow sluice_<stage>_<what>_<unit>; counters end in _total (checked at start-up).
// Every label value of a closed set is created at start-up: prometheus-cpp leaves a labelled
// family without children out of /metrics, and dashboards must see zeros, not gaps.
//
// Never: uses an unbounded value (address, sender, id) as a label; blocks a scrape on a
// session; is destroyed on a latency-sensitive path (Exposer's destructor waits ~2 s after
// a scrape).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace prometheus {
class Exposer;
}

namespace sluice::observe {

// Serves one registry on `listen` ("HOST:PORT", "[::1]:PORT", ":PORT" for every address;
// port 0 picks a free one, see port()).
class MetricsServer {
 public:
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(
      std::string_view listen, std::shared_ptr<prometheus::Registry> registry);
  ~MetricsServer();  // may block ~2 s after a scrape (prometheus-cpp)
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  uint16_t port() const { return port_; }
  prometheus::Registry& registry() { return *registry_; }

 private:
  MetricsServer() = default;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  uint16_t port_ = 0;
};

// The civetweb "listening_ports" spelling of HOST:PORT ("127.0.0.1:0", "[::1]:9201", "9201").
absl::StatusOr<std::string> ExposerBindAddress(std::string_view listen);

// Throws std::invalid_argument unless `name` is sluice_..., [a-z0-9_] only, and ends in
// _total exactly when `counter`. Called by the Add*/Labelled* helpers below.
void CheckMetricName(std::string_view name, bool counter);

// A family with one unlabelled child; the child is returned.
prometheus::Counter& AddCounter(prometheus::Registry& registry, const std::string& name,
                                const std::string& help);
prometheus::Gauge& AddGauge(prometheus::Registry& registry, const std::string& name,
                            const std::string& help);
prometheus::Histogram& AddHistogram(prometheus::Registry& registry, const std::string& name,
                                    const std::string& help,
                                    const prometheus::Histogram::BucketBoundaries& buckets);

// One label of a family and every value it takes (a small closed set).
struct LabelSet {
  std::string name;
  std::vector<std::string> values;
};

// A labelled family whose children (every combination of the declared label values) exist
// from start-up. at() finds a child by its label values in declaration order; a value
// outside the declared set still works (the child is created then), so a surprise never
// loses a count, but the declared set is what dashboards can rely on.
template <typename Metric>
class Labelled {
 public:
  // Registers the family `name` (name checked) and creates every child. `buckets`: for
  // histograms only.
  Labelled(prometheus::Registry& registry, const std::string& name, const std::string& help,
           std::vector<LabelSet> labels, prometheus::Histogram::BucketBoundaries buckets = {});
  Labelled(const Labelled&) = delete;
  Labelled& operator=(const Labelled&) = delete;

  Metric& at(std::initializer_list<std::string_view> values);
  Metric& at(const std::vector<std::string_view>& values);
  const std::vector<LabelSet>& labels() const { return labels_; }

 private:
  Metric& Create(const std::vector<std::string_view>& values);

  prometheus::Family<Metric>& family_;
  std::vector<LabelSet> labels_;
  prometheus::Histogram::BucketBoundaries buckets_;  // histograms only
  std::mutex mu_;
  absl::flat_hash_map<std::string, Metric*> children_;  // key: values joined by '\x1f'
};

// Bucket boundaries for durations in seconds, 1 ms .. 5 min.
prometheus::Histogram::BucketBoundaries LatencyBucketsSeconds();

extern template class Labelled<prometheus::Counter>;
extern template class Labelled<prometheus::Gauge>;
extern template class Labelled<prometheus::Histogram>;

}  // namespace sluice::observe
