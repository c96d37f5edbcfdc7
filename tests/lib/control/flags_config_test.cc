// tests/lib/control/flags_config_test.cc
//
// The service command line (DESIGN.md "CLI contract"): files first then flags in order,
// both flag forms, unknown and bad flags named, --help, the filter-building flags, and the
// three service tables against their config messages.
//
// Never: lets the library exit the test process (--help must come back as a value).
#include "lib/control/flags.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "lib/control/hostname.h"
#include "lib/control/service_flags.h"
#include "lib/status/status_matchers.h"
#include "sluice/v1/config.pb.h"

namespace sluice::control {
namespace {

using ::sluice::testing::IsOk;
using ::sluice::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using sluice::v1::FilterBridgeConfig;
using sluice::v1::FrontendConfig;
using sluice::v1::ReinjectConfig;

constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;

std::string WriteFile(const std::string& name, const std::string& text) {
  std::string path = ::testing::TempDir() + "/" + name;
  std::ofstream(path) << text;
  return path;
}

TEST(FlagsTest, FlagsOverrideTheFileWhereverTheyStand) {
  std::string file = WriteFile("fe.yaml", "limits:\n  max_sessions: 500\n  max_recipients: 50\nfilter: a:1\n");
  FrontendConfig c;
  auto r = ParseCommandLine({"--max_sessions=20", "--config=" + file, "--filter", "b:2"}, FrontendFlags(), &c);
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->action, CommandLineAction::kRun);
  EXPECT_EQ(c.limits().max_sessions(), 20u);
  EXPECT_EQ(c.limits().max_recipients(), 50u);   // from the file
  EXPECT_EQ(c.limits().smtpd_timeout_seconds(), 300u);  // schema default
  EXPECT_EQ(c.filter(), "b:2");
  EXPECT_THAT(r->config_files, ElementsAre(file));
  EXPECT_THAT(r->applied_flags, ElementsAre("--max_sessions=20", "--filter=b:2"));
}

TEST(FlagsTest, SeveralConfigFilesLoadInOrder) {
  std::string a = WriteFile("a.yaml", "filter: a:1\nlimits: {max_sessions: 5}\n");
  std::string b = WriteFile("b.yaml", "filter: b:2\n");
  std::string c3 = WriteFile("c.yaml", "limits: {max_sessions: 7}\n");
  FrontendConfig c;
  auto r = ParseCommandLine({"--config=" + a + "," + b, "--config", c3}, FrontendFlags(), &c);
  ASSERT_THAT(r, IsOk());
  EXPECT_THAT(r->config_files, ElementsAre(a, b, c3));
  EXPECT_EQ(c.filter(), "b:2");
  EXPECT_EQ(c.limits().max_sessions(), 7u);
}

TEST(FlagsTest, DurationAndListFlags) {
  FrontendConfig c;
  ASSERT_THAT(ParseCommandLine({"--proxy_timeout=2m", "--mynetworks=10.0.0.0/8,192.0.2.0/24",
                                "--accepted-domains=example.com", "--message_size_limit=0"},
                               FrontendFlags(), &c),
              IsOk());
  EXPECT_EQ(c.limits().proxy_timeout_seconds(), 120u);
  EXPECT_THAT(c.mynetworks(), ElementsAre("10.0.0.0/8", "192.0.2.0/24"));
  EXPECT_THAT(c.accepted_domains(), ElementsAre("example.com"));
  EXPECT_TRUE(c.limits().has_message_size_limit_bytes());
  EXPECT_EQ(c.limits().message_size_limit_bytes(), 0u);  // 0 = no limit, kept
}

TEST(FlagsTest, UnknownFlagIsAnError) {
  FrontendConfig c;
  EXPECT_THAT(ParseCommandLine({"--max_sesions=5"}, FrontendFlags(), &c),
              StatusIs(kInvalid, "unknown flag --max_sesions"));
  // A flag of another stage is unknown here.
  EXPECT_THAT(ParseCommandLine({"--next_hop=x:1"}, FrontendFlags(), &c),
              StatusIs(kInvalid, "unknown flag --next_hop"));
  EXPECT_THAT(ParseCommandLine({"stray"}, FrontendFlags(), &c), StatusIs(kInvalid, "unexpected argument 'stray'"));
  EXPECT_THAT(ParseCommandLine({"--hostname"}, FrontendFlags(), &c), StatusIs(kInvalid, "--hostname needs a value"));
}

TEST(FlagsTest, BadValuesNameTheFlag) {
  FrontendConfig c;
  EXPECT_THAT(ParseCommandLine({"--max_sessions=lots"}, FrontendFlags(), &c),
              StatusIs(kInvalid, "--max_sessions=lots: limits.max_sessions: 'lots' is not a whole number"));
  FrontendConfig d;
  EXPECT_THAT(ParseCommandLine({"--max_sessions=0"}, FrontendFlags(), &d),
              StatusIs(kInvalid, "--max_sessions=0: limits.max_sessions: 0 is below the minimum 1"));
  FrontendConfig e;
  EXPECT_THAT(ParseCommandLine({"--smtp_listen=nowhere"}, FrontendFlags(), &e),
              StatusIs(kInvalid, "--smtp_listen=nowhere: bad HOST:PORT"));
  FrontendConfig f;
  EXPECT_THAT(ParseCommandLine({"--mynetworks=10.0.0.0/8,banana"}, FrontendFlags(), &f),
              StatusIs(kInvalid, "--mynetworks=10.0.0.0/8,banana: mynetworks[1]"));
  FrontendConfig g;
  EXPECT_THAT(ParseCommandLine({"--log_level=loud"}, FrontendFlags(), &g), StatusIs(kInvalid, "--log_level=loud"));
}

TEST(FlagsTest, ValidationOfAFileValueNamesTheFile) {
  std::string file = WriteFile("bad-range.yaml", "limits:\n  hard_error_limit: 0\n");
  FrontendConfig c;
  EXPECT_THAT(ParseCommandLine({"--config=" + file}, FrontendFlags(), &c),
              StatusIs(kInvalid, "limits.hard_error_limit: 0 is below the minimum 1 (in " + file + ")"));
}

TEST(FlagsTest, MissingConfigFileIsNotFound) {
  FrontendConfig c;
  EXPECT_THAT(ParseCommandLine({"--config="}, FrontendFlags(), &c), StatusIs(kInvalid, "--config needs a file name"));
  EXPECT_THAT(ParseCommandLine({"--config=/nonexistent/sluice.yaml"}, FrontendFlags(), &c),
              StatusIs(absl::StatusCode::kNotFound, "/nonexistent/sluice.yaml"));
}

TEST(FlagsTest, NonRepeatableFlagTwiceIsAnError) {
  FrontendConfig c;
  EXPECT_THAT(ParseCommandLine({"--max_sessions=5", "--max_sessions=6"}, FrontendFlags(), &c),
              StatusIs(kInvalid, "--max_sessions is given more than once"));
}

TEST(FlagsTest, HelpListsEveryFlagAndAsksToExitZero) {
  FrontendConfig c;
  ::testing::internal::CaptureStdout();
  auto r = ParseCommandLine({"--max_sessions=bad", "--help"}, FrontendFlags(), &c);
  std::string out = ::testing::internal::GetCapturedStdout();
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->action, CommandLineAction::kExitSuccess);
  for (const Flag& flag : FrontendFlags().flags) EXPECT_THAT(out, HasSubstr("--" + flag.name + "=")) << flag.name;
  EXPECT_THAT(out, HasSubstr("--config=FILE"));
  EXPECT_THAT(out, HasSubstr("--log_level="));
  EXPECT_THAT(out, HasSubstr("(default: 100)"));  // max_sessions, from the schema
  EXPECT_THAT(out, HasSubstr("Usage: sluice-frontend"));
  EXPECT_EQ(c.ByteSizeLong(), 0u);  // nothing applied

  ::testing::internal::CaptureStdout();
  ReinjectConfig rc;
  auto h = ParseCommandLine({"-h"}, ReinjectFlags(), &rc);
  out = ::testing::internal::GetCapturedStdout();
  ASSERT_THAT(h, IsOk());
  EXPECT_EQ(h->action, CommandLineAction::kExitSuccess);
  EXPECT_THAT(out, HasSubstr("--queue_dir=DIR"));
}

TEST(FlagsTest, ArgvFormUsesTheTableProgramAndLogLevel) {
  const char* argv[] = {"/usr/bin/sluice-frontend", "--log_level=debug", "--hostname=mx.test"};
  FrontendConfig c;
  auto r = ParseCommandLine(3, const_cast<char**>(argv), FrontendFlags(), &c);
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->log_level, observe::Level::kDebug);
  EXPECT_EQ(c.server().hostname(), "mx.test");
}

TEST(FlagsTest, StageDefaultsFillTheServerSection) {
  FrontendConfig f;
  ASSERT_THAT(ParseCommandLine(std::vector<std::string>{}, FrontendFlags(), &f), IsOk());
  EXPECT_EQ(f.server().smtp_listen(), DefaultSmtpListen(25, 2525));
  EXPECT_EQ(f.server().admin_listen(), "127.0.0.1:9101");
  EXPECT_EQ(f.server().metrics_listen(), "127.0.0.1:9201");
  EXPECT_EQ(f.server().hostname(), DefaultHostname());
  EXPECT_EQ(f.server().instance(), "frontend");
  FilterBridgeConfig fb;
  ASSERT_THAT(ParseCommandLine(std::vector<std::string>{}, FilterBridgeFlags(), &fb), IsOk());
  EXPECT_EQ(fb.server().smtp_listen(), "127.0.0.1:10025");
  EXPECT_EQ(fb.server().admin_listen(), "127.0.0.1:9102");
  ReinjectConfig r;
  ASSERT_THAT(ParseCommandLine({"--admin_listen=0.0.0.0:9999"}, ReinjectFlags(), &r), IsOk());
  EXPECT_EQ(r.server().smtp_listen(), "127.0.0.1:10026");
  EXPECT_EQ(r.server().admin_listen(), "0.0.0.0:9999");
  EXPECT_EQ(r.server().metrics_listen(), "127.0.0.1:9203");
}

TEST(FlagsTest, FilterFlagsBuildTheChainAfterTheFilesFilters) {
  std::string file = WriteFile("fb.yaml", "filters:\n  - name: milter-1\n    milter: {address: 'inet:a:1'}\n");
  FilterBridgeConfig c;
  ASSERT_THAT(ParseCommandLine({"--config=" + file, "--milter=inet:rspamd:11332", "--grpc_filter=scan:50051",
                                "--milter", "unix:/run/clamav.sock", "--rules=/etc/rules.yaml",
                                "--grpc_filter=scan2:50051", "--next_hop=reinject:10026"},
                               FilterBridgeFlags(), &c),
              IsOk());
  ASSERT_EQ(c.filters_size(), 6);
  EXPECT_EQ(c.filters(0).name(), "milter-1");
  EXPECT_EQ(c.filters(1).name(), "milter-2");
  EXPECT_EQ(c.filters(1).milter().address(), "inet:rspamd:11332");
  EXPECT_EQ(c.filters(1).milter().command_timeout_seconds(), 30u);  // defaults reach flag-made filters
  EXPECT_EQ(c.filters(2).name(), "grpc-1");
  EXPECT_EQ(c.filters(2).grpc().address(), "scan:50051");
  EXPECT_EQ(c.filters(3).name(), "milter-3");
  EXPECT_EQ(c.filters(3).milter().address(), "unix:/run/clamav.sock");
  EXPECT_EQ(c.filters(4).name(), "rules");
  EXPECT_EQ(c.filters(4).rules().file(), "/etc/rules.yaml");
  EXPECT_EQ(c.filters(5).name(), "grpc-2");
  EXPECT_EQ(c.next_hop(), "reinject:10026");
}

TEST(FlagsTest, FilterFlagsCheckTheirAddresses) {
  FilterBridgeConfig c;
  EXPECT_THAT(ParseCommandLine({"--milter=rspamd:11332"}, FilterBridgeFlags(), &c),
              StatusIs(kInvalid, "--milter=rspamd:11332: expected inet:HOST:PORT or unix:/PATH"));
  EXPECT_THAT(ParseCommandLine({"--grpc_filter=scan"}, FilterBridgeFlags(), &c),
              StatusIs(kInvalid, "--grpc_filter=scan: bad HOST:PORT"));
  ReinjectConfig r;
  EXPECT_THAT(ParseCommandLine({"--deliver=mbox:/var/mail"}, ReinjectFlags(), &r),
              StatusIs(kInvalid, "--deliver=mbox:/var/mail: expected maildir:DIR"));
  ReinjectConfig ok;
  ASSERT_THAT(ParseCommandLine({"--deliver=lmtp:dovecot:24", "--xforward_hosts=10.0.0.0/8"}, ReinjectFlags(), &ok),
              IsOk());
  EXPECT_EQ(ok.deliver(), "lmtp:dovecot:24");
  EXPECT_THAT(ok.xforward_hosts(), ElementsAre("10.0.0.0/8"));
  EXPECT_THAT(ok.mynetworks(), ElementsAre("127.0.0.0/8", "::1/128"));
  for (const char* discard : {"--deliver=discard", "--deliver=discard:sink"}) {
    ReinjectConfig d;
    EXPECT_THAT(ParseCommandLine({discard}, ReinjectFlags(), &d), IsOk()) << discard;
  }
  EXPECT_THAT(ParseCommandLine({"--deliver=discardx"}, ReinjectFlags(), &r), StatusIs(kInvalid, "--deliver=discardx"));
}

TEST(FlagsTest, ServiceTablesMatchTheirConfigMessages) {
  EXPECT_THAT(CheckFlagTable(FrontendFlags(), FrontendConfig::descriptor()), IsOk());
  EXPECT_THAT(CheckFlagTable(FilterBridgeFlags(), FilterBridgeConfig::descriptor()), IsOk());
  EXPECT_THAT(CheckFlagTable(ReinjectFlags(), ReinjectConfig::descriptor()), IsOk());
  // And the check can fail: the frontend table does not fit the reinject message.
  EXPECT_THAT(CheckFlagTable(FrontendFlags(), ReinjectConfig::descriptor()),
              StatusIs(absl::StatusCode::kInternal, "filter is not a value field of ReinjectConfig"));
}

TEST(FlagsTest, CliContractFlagsExist) {
  auto names = [](const FlagTable& t) {
    std::vector<std::string> out;
    for (const Flag& f : t.flags) out.push_back(f.name);
    return out;
  };
  using ::testing::IsSupersetOf;
  const std::vector<std::string> common = {"smtp_listen", "admin_listen", "metrics_listen", "hostname"};
  EXPECT_THAT(names(FrontendFlags()), IsSupersetOf(common));
  EXPECT_THAT(names(FrontendFlags()),
              IsSupersetOf({"filter", "max_sessions", "per_client_connection_limit", "proxy_timeout",
                            "message_size_limit", "mynetworks", "accepted_domains"}));
  EXPECT_THAT(names(FilterBridgeFlags()), IsSupersetOf(common));
  EXPECT_THAT(names(FilterBridgeFlags()), IsSupersetOf({"next_hop", "rules", "milter", "grpc_filter"}));
  EXPECT_THAT(names(ReinjectFlags()), IsSupersetOf(common));
  EXPECT_THAT(names(ReinjectFlags()), IsSupersetOf({"queue_dir", "deliver", "mynetworks", "xforward_hosts"}));
}

}  // namespace
}  // namespace sluice::control
