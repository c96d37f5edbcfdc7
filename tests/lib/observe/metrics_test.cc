// tests/lib/observe/metrics_test.cc
//
// MetricsServer serves the shared registry on an ephemeral port; the declaration helpers
// check names and create every declared label value at start-up, so /metrics has no gaps;
// Prometheus' own linter (promtool) accepts what we serve.
//
// Never: depends on timing or on a fixed port.
#include "lib/observe/metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace sluice::observe {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// A plain HTTP/1.0 GET over a socket: what a scraper does, with no client library between.
std::string Scrape(uint16_t port, const std::string& path = "/metrics") {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "";
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return "";
  }
  std::string req = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  if (::write(fd, req.data(), req.size()) != static_cast<ssize_t>(req.size())) {
    ::close(fd);
    return "";
  }
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return out;
}

std::string Body(const std::string& response) {
  size_t end = response.find("\r\n\r\n");
  return end == std::string::npos ? "" : response.substr(end + 4);
}

// `promtool check metrics` over `exposition`: its exit code, its report in *report.
int Promtool(const char* promtool, const std::string& exposition, std::string* report) {
  char dir[] = "/tmp/sluice-metrics-XXXXXX";
  if (::mkdtemp(dir) == nullptr) return -1;
  std::string file = std::string(dir) + "/metrics.txt";
  std::ofstream(file) << exposition;
  std::string cmd = std::string(promtool) + " check metrics < " + file + " > " + dir +
                    "/promtool.out 2>&1";
  int rc = std::system(cmd.c_str());
  std::ifstream out(std::string(dir) + "/promtool.out");
  report->assign(std::istreambuf_iterator<char>(out), std::istreambuf_iterator<char>());
  std::string rm = std::string("rm -rf ") + dir;
  if (std::system(rm.c_str()) != 0) report->append("\n(could not remove the temp dir)");
  return rc;
}

// One component's metrics, declared the way every component declares them.
struct ExampleMetrics {
  explicit ExampleMetrics(prometheus::Registry& r)
      : sessions(AddGauge(r, "sluice_example_sessions_active", "Sessions open now.")),
        accepted(AddCounter(r, "sluice_example_connections_accepted_total", "Connections.")),
        duration(AddHistogram(r, "sluice_example_session_duration_seconds", "Session time.",
                              LatencyBucketsSeconds())),
        replies(r, "sluice_example_replies_total", "Replies by class and outcome.",
                {{"class", {"2xx", "4xx", "5xx"}}, {"outcome", {"sent", "failed"}}}),
        filter_seconds(r, "sluice_example_filter_duration_seconds", "Per filter kind.",
                       {{"kind", {"rules", "milter"}}}, {0.1, 1, 10}) {}
  prometheus::Gauge& sessions;
  prometheus::Counter& accepted;
  prometheus::Histogram& duration;
  Labelled<prometheus::Counter> replies;
  Labelled<prometheus::Histogram> filter_seconds;
};

TEST(MetricsServer, ServesEveryDeclaredSeriesIncludingZeroLabelValues) {
  auto registry = std::make_shared<prometheus::Registry>();
  ExampleMetrics m(*registry);
  m.sessions.Set(3);
  m.accepted.Increment(2);
  m.replies.at({"4xx", "sent"}).Increment();
  m.duration.Observe(0.2);

  auto server = MetricsServer::Start("127.0.0.1:0", registry);
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_NE((*server)->port(), 0);

  std::string response = Scrape((*server)->port());
  ASSERT_THAT(response, HasSubstr("200 OK"));
  std::string body = Body(response);
  EXPECT_THAT(body, HasSubstr("sluice_example_sessions_active 3"));
  EXPECT_THAT(body, HasSubstr("sluice_example_connections_accepted_total 2"));
  EXPECT_THAT(body, HasSubstr("sluice_example_replies_total{class=\"4xx\",outcome=\"sent\"} 1"));
  // Never touched, still there: every declared combination exists from the start.
  EXPECT_THAT(body, HasSubstr("sluice_example_replies_total{class=\"5xx\",outcome=\"failed\"} 0"));
  EXPECT_THAT(body, HasSubstr("sluice_example_replies_total{class=\"2xx\",outcome=\"sent\"} 0"));
  EXPECT_THAT(body, HasSubstr("sluice_example_filter_duration_seconds_count{kind=\"milter\"} 0"));
  EXPECT_THAT(body, HasSubstr("sluice_example_session_duration_seconds_count 1"));
}

TEST(MetricsServer, PromtoolAcceptsTheExposition) {
  const char* promtool = "/usr/bin/promtool";
  if (::access(promtool, X_OK) != 0) GTEST_SKIP() << "promtool not installed";
  auto registry = std::make_shared<prometheus::Registry>();
  ExampleMetrics m(*registry);
  m.filter_seconds.at({"rules"}).Observe(0.5);
  auto server = MetricsServer::Start("127.0.0.1:0", registry);
  ASSERT_TRUE(server.ok()) << server.status();
  std::string body = Body(Scrape((*server)->port()));
  ASSERT_THAT(body, HasSubstr("sluice_example_replies_total"));

  std::string report;
  EXPECT_EQ(Promtool(promtool, body, &report), 0) << report << "\n--- exposition:\n" << body;
  // The linter has teeth: a counter without _total is refused.
  EXPECT_NE(Promtool(promtool, "# HELP sluice_x X.\n# TYPE sluice_x counter\nsluice_x 1\n",
                     &report),
            0);
}

TEST(MetricsServer, RefusesABadListenAddress) {
  auto registry = std::make_shared<prometheus::Registry>();
  EXPECT_FALSE(MetricsServer::Start("127.0.0.1", registry).ok());
  EXPECT_FALSE(MetricsServer::Start("127.0.0.1:99999", registry).ok());
  EXPECT_FALSE(MetricsServer::Start("::1:9201", registry).ok());
}

TEST(MetricsServer, ReportsABusyPort) {
  auto registry = std::make_shared<prometheus::Registry>();
  auto first = MetricsServer::Start("127.0.0.1:0", registry);
  ASSERT_TRUE(first.ok()) << first.status();
  auto second =
      MetricsServer::Start("127.0.0.1:" + std::to_string((*first)->port()), registry);
  EXPECT_FALSE(second.ok());
}

TEST(ExposerBindAddress, SpellsHostPortTheCivetwebWay) {
  EXPECT_EQ(*ExposerBindAddress("127.0.0.1:9201"), "127.0.0.1:9201");
  EXPECT_EQ(*ExposerBindAddress(":9201"), "9201");
  EXPECT_EQ(*ExposerBindAddress("[::1]:0"), "[::1]:0");
}

TEST(CheckMetricName, EnforcesTheNamingConvention) {
  EXPECT_NO_THROW(CheckMetricName("sluice_frontend_sessions_active", false));
  EXPECT_NO_THROW(CheckMetricName("sluice_frontend_replies_total", true));
  EXPECT_THROW(CheckMetricName("sluice_frontend_replies", true), std::invalid_argument);
  EXPECT_THROW(CheckMetricName("sluice_frontend_bytes_total", false), std::invalid_argument);
  EXPECT_THROW(CheckMetricName("frontend_replies_total", true), std::invalid_argument);
  EXPECT_THROW(CheckMetricName("sluice_Frontend_total", true), std::invalid_argument);
  prometheus::Registry r;
  EXPECT_THROW(AddCounter(r, "sluice_example_sessions", "no _total"), std::invalid_argument);
}

TEST(Labelled, FindsChildrenByValueAndCreatesSurprisesOnDemand) {
  prometheus::Registry r;
  Labelled<prometheus::Counter> c(r, "sluice_example_calls_total", "Calls.",
                                  {{"code", {"OK", "NOT_FOUND"}}});
  c.at({"OK"}).Increment();
  c.at({"OK"}).Increment();
  EXPECT_EQ(c.at({"OK"}).Value(), 2);
  EXPECT_EQ(c.at({"NOT_FOUND"}).Value(), 0);
  c.at({"INTERNAL"}).Increment();  // not declared: still counted
  EXPECT_EQ(c.at({"INTERNAL"}).Value(), 1);
  EXPECT_THROW(c.at({"OK", "extra"}), std::invalid_argument);
  // A label with no declared values yet (a filter chain without filters): the family exists
  // empty, and at() still creates children on demand.
  Labelled<prometheus::Gauge> empty(r, "sluice_example_x", "x", {{"kind", {}}});
  EXPECT_EQ(empty.at({"late"}).Value(), 0);
}

}  // namespace
}  // namespace sluice::observe
