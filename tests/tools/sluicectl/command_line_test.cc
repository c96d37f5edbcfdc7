// tests/tools/sluicectl/command_line_test.cc
//
// The command line: global flags anywhere, command flags after their command, both flag
// forms, typed values -- and every bad line refused with exit 2 and the offending word named.
//
// Never: opens a connection (usage errors happen before any call).
#include "tools/sluicectl/command_line.h"

#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "lib/status/status_matchers.h"
#include "tools/sluicectl/run.h"

namespace sluice::ctl {
namespace {

using ::sluice::testing::IsOk;
using ::sluice::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

absl::StatusOr<Invocation> Parse(std::vector<std::string> args) { return ParseCommandLine(args); }

void ExpectUsageError(std::vector<std::string> args, const std::string& names) {
  auto inv = Parse(args);
  EXPECT_THAT(inv, StatusIs(absl::StatusCode::kInvalidArgument, names)) << "args: " << ::testing::PrintToString(args);
}

TEST(CommandLineTest, ParsesSingleWordCommand) {
  auto inv = Parse({"status"});
  ASSERT_THAT(inv, IsOk());
  EXPECT_EQ(inv->command, Command::kStatus);
  EXPECT_EQ(inv->command_name, "status");
  EXPECT_EQ(inv->global.output, OutputFormat::kTable);
  EXPECT_EQ(inv->global.timeout, absl::Seconds(5));
}

TEST(CommandLineTest, ParsesGroupCommandWithArguments) {
  auto inv = Parse({"queue", "hold", "Q1", "Q2", "--reason=spam run"});
  ASSERT_THAT(inv, IsOk());
  EXPECT_EQ(inv->command, Command::kQueueHold);
  EXPECT_EQ(inv->command_name, "queue hold");
  EXPECT_THAT(inv->args, ElementsAre("Q1", "Q2"));
  EXPECT_EQ(inv->options.reason, "spam run");
}

TEST(CommandLineTest, GlobalFlagsGoBeforeOrAfterTheCommand) {
  auto inv = Parse({"--output=json", "sessions", "--client=192.0.2.7", "--token", "s3cret", "--timeout=750ms"});
  ASSERT_THAT(inv, IsOk());
  EXPECT_EQ(inv->command, Command::kSessions);
  EXPECT_EQ(inv->global.output, OutputFormat::kJson);
  EXPECT_EQ(inv->options.client, "192.0.2.7");
  EXPECT_EQ(inv->global.token, "s3cret");
  EXPECT_EQ(inv->global.timeout, absl::Milliseconds(750));
}

TEST(CommandLineTest, AdminIsRepeatableAndCommaSeparated) {
  auto inv = Parse({"--admin=10.0.0.1:9101,10.0.0.2:9101", "--admin", "frontend.sluice.svc:9101", "status"});
  ASSERT_THAT(inv, IsOk());
  EXPECT_THAT(inv->global.admin, ElementsAre("10.0.0.1:9101", "10.0.0.2:9101", "frontend.sluice.svc:9101"));
}

TEST(CommandLineTest, DrainTimeoutIsTheCommandFlagAfterDrain) {
  auto inv = Parse({"--timeout=10s", "drain", "--timeout=2m"});
  ASSERT_THAT(inv, IsOk());
  EXPECT_EQ(inv->global.timeout, absl::Seconds(10));
  EXPECT_EQ(inv->options.drain_timeout, absl::Minutes(2));
}

TEST(CommandLineTest, DrainHandoffIsASwitchOfDrainOnly) {
  auto inv = Parse({"drain", "--handoff"});
  ASSERT_THAT(inv, IsOk());
  EXPECT_TRUE(inv->options.drain_handoff);
  auto plain = Parse({"drain", "--timeout=5s"});
  ASSERT_THAT(plain, IsOk());
  EXPECT_FALSE(plain->options.drain_handoff);
  ExpectUsageError({"status", "--handoff"}, "does not apply to status");
  ExpectUsageError({"drain", "--handoff=maybe"}, "--handoff");
}

TEST(CommandLineTest, TimeoutAfterOtherCommandsIsTheCallTimeout) {
  auto inv = Parse({"status", "--timeout=2s"});
  ASSERT_THAT(inv, IsOk());
  EXPECT_EQ(inv->global.timeout, absl::Seconds(2));
}

TEST(CommandLineTest, QueueListFiltersAreTyped) {
  auto inv = Parse({"queue", "list", "--state=DEFERRED", "--sender=bob@", "--recipient", "example.org"});
  ASSERT_THAT(inv, IsOk());
  EXPECT_EQ(inv->options.queue_state, sluice::v1::DEFERRED);
  EXPECT_EQ(inv->options.sender, "bob@");
  EXPECT_EQ(inv->options.recipient, "example.org");
}

TEST(CommandLineTest, StageIsRepeatable) {
  auto inv = Parse({"--stage=frontend", "sessions", "--stage=reinject"});
  ASSERT_THAT(inv, IsOk());
  EXPECT_THAT(inv->global.stages, ElementsAre("frontend", "reinject"));
}

TEST(CommandLineTest, FlushTakesNoIdsOrSome) {
  EXPECT_THAT(Parse({"queue", "flush"}), IsOk());
  EXPECT_THAT(Parse({"queue", "flush", "A", "B"}), IsOk());
}

TEST(CommandLineTest, QueueMoveTakesIdsOrAllAndAPeer) {
  auto ids = Parse({"queue", "move", "Q1", "Q2", "--to=10.0.0.8:9103"});
  ASSERT_THAT(ids, IsOk());
  EXPECT_EQ(ids->command, Command::kQueueMove);
  EXPECT_THAT(ids->args, ElementsAre("Q1", "Q2"));
  EXPECT_EQ(ids->options.move_to, "10.0.0.8:9103");
  EXPECT_FALSE(ids->options.move_all);
  auto all = Parse({"queue", "move", "--all", "--to", "reinject-0.reinject-admin:9103"});  // --all is a switch
  ASSERT_THAT(all, IsOk());
  EXPECT_TRUE(all->options.move_all);
  EXPECT_EQ(all->options.move_to, "reinject-0.reinject-admin:9103");
}

TEST(CommandLineTest, RefusesQueueMoveWithoutPeerOrWithBothIdsAndAll) {
  ExpectUsageError({"queue", "move", "Q1"}, "--to");
  ExpectUsageError({"queue", "move", "--to=10.0.0.8:9103"}, "IDs or --all");
  ExpectUsageError({"queue", "move", "Q1", "--all", "--to=10.0.0.8:9103"}, "IDs or --all");
}

TEST(CommandLineTest, DoubleDashEndsFlags) {
  auto inv = Parse({"session", "--", "--odd-id"});
  ASSERT_THAT(inv, IsOk());
  EXPECT_THAT(inv->args, ElementsAre("--odd-id"));
}

TEST(CommandLineTest, HelpAnywhereWins) {
  for (auto args : std::vector<std::vector<std::string>>{{"--help"}, {"-h"}, {"queue", "--help"}, {"help"},
                                                         {"--bogus", "--help"}}) {
    auto inv = Parse(args);
    ASSERT_THAT(inv, IsOk());
    EXPECT_EQ(inv->command, Command::kHelp);
  }
}

TEST(CommandLineTest, RefusesUnknownFlagNamingIt) { ExpectUsageError({"status", "--colour=red"}, "--colour"); }
TEST(CommandLineTest, RefusesSingleDashFlag) { ExpectUsageError({"status", "-v"}, "-v"); }
TEST(CommandLineTest, RefusesUnknownCommand) { ExpectUsageError({"restart"}, "restart"); }
TEST(CommandLineTest, RefusesUnknownSubcommand) { ExpectUsageError({"queue", "purge"}, "purge"); }
TEST(CommandLineTest, RefusesGroupWithoutSubcommand) { ExpectUsageError({"limits"}, "limits needs a command"); }
TEST(CommandLineTest, RefusesNoCommand) { ExpectUsageError({"--output=json"}, "no command"); }
TEST(CommandLineTest, RefusesFlagOfAnotherCommand) { ExpectUsageError({"status", "--client=1.2.3.4"}, "--client"); }
TEST(CommandLineTest, RefusesCommandFlagBeforeItsCommand) { ExpectUsageError({"--client=1.2.3.4", "sessions"}, "--client"); }
TEST(CommandLineTest, RefusesMissingFlagValue) { ExpectUsageError({"status", "--admin"}, "--admin needs a value"); }
TEST(CommandLineTest, RefusesBadOutput) { ExpectUsageError({"--output=yaml", "status"}, "--output"); }
TEST(CommandLineTest, RefusesBadStage) { ExpectUsageError({"--stage=smtpd", "status"}, "smtpd"); }
TEST(CommandLineTest, RefusesBadAdminAddress) { ExpectUsageError({"--admin=10.0.0.1", "status"}, "10.0.0.1"); }
TEST(CommandLineTest, RefusesAdminWithoutHost) { ExpectUsageError({"--admin=:9101", "status"}, ":9101"); }
TEST(CommandLineTest, RefusesBadTimeout) { ExpectUsageError({"--timeout=soon", "status"}, "--timeout"); }
TEST(CommandLineTest, RefusesZeroTimeout) { ExpectUsageError({"--timeout=0s", "status"}, "--timeout"); }
TEST(CommandLineTest, RefusesBadQueueState) { ExpectUsageError({"queue", "list", "--state=stuck"}, "stuck"); }
TEST(CommandLineTest, RefusesMissingId) { ExpectUsageError({"session"}, "session ID"); }
TEST(CommandLineTest, RefusesExtraId) { ExpectUsageError({"kill", "A", "B"}, "kill ID"); }
TEST(CommandLineTest, RefusesArgumentsToArgumentlessCommand) { ExpectUsageError({"status", "now"}, "\"now\""); }
TEST(CommandLineTest, RefusesHoldWithoutIds) { ExpectUsageError({"queue", "hold"}, "queue hold ID"); }
TEST(CommandLineTest, RefusesLimitsSetWithoutAssignments) { ExpectUsageError({"limits", "set"}, "KEY=VALUE"); }
TEST(CommandLineTest, RefusesTokenAndTokenFile) {
  ExpectUsageError({"--token=a", "--token_file=/tmp/t", "status"}, "--token_file");
}
TEST(CommandLineTest, RefusesCertWithoutKey) { ExpectUsageError({"--tls_cert=c.pem", "status"}, "--tls_key"); }
TEST(CommandLineTest, RefusesQueueCommandAtAnotherStage) {
  ExpectUsageError({"--stage=frontend", "queue", "list"}, "reinject");
}
TEST(CommandLineTest, RefusesStageWithAdminOutsideSessions) {
  ExpectUsageError({"--stage=frontend", "--admin=10.0.0.1:9101", "status"}, "--stage");
  EXPECT_THAT(Parse({"--stage=frontend", "--admin=10.0.0.1:9101", "sessions"}), IsOk());
}

TEST(RunSluicectlTest, HelpExitsZeroListingCommandsFlagsAndExitCodes) {
  std::ostringstream out, err;
  EXPECT_EQ(RunSluicectl({"--help"}, out, err), 0);
  for (const char* word : {"status", "sessions", "session ID", "limits set KEY=VALUE", "drain [--timeout=DURATION]",
                           "queue flush [ID...]", "--admin=HOST:PORT", "--token_file=FILE", "--tls_ca=FILE",
                           "--output=table|json", "Exit codes", "5  unavailable"}) {
    EXPECT_THAT(out.str(), HasSubstr(word));
  }
  EXPECT_EQ(err.str(), "");
}

TEST(RunSluicectlTest, UsageErrorExitsTwoNamingTheFlagOnStderr) {
  std::ostringstream out, err;
  EXPECT_EQ(RunSluicectl({"status", "--verbose"}, out, err), 2);
  EXPECT_EQ(out.str(), "");
  EXPECT_THAT(err.str(), HasSubstr("unknown flag --verbose"));
}

TEST(RunSluicectlTest, UnknownLimitKeyExitsTwoNamingIt) {
  std::ostringstream out, err;
  // Nothing listens on this address: the key must be refused before any call is made.
  EXPECT_EQ(RunSluicectl({"--admin=127.0.0.1:1", "limits", "set", "max_sesions=5"}, out, err), 2);
  EXPECT_THAT(err.str(), HasSubstr("unknown limit key \"max_sesions\""));
  EXPECT_THAT(err.str(), ::testing::Not(HasSubstr("UNAVAILABLE")));
}

TEST(RunSluicectlTest, UnreadableTokenFileExitsTwo) {
  std::ostringstream out, err;
  EXPECT_EQ(RunSluicectl({"--token_file=/nonexistent/token", "status"}, out, err), 2);
  EXPECT_THAT(err.str(), HasSubstr("/nonexistent/token"));
}

}  // namespace
}  // namespace sluice::ctl
