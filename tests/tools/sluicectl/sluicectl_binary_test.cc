// tests/tools/sluicectl/sluicectl_binary_test.cc
//
// The real sluicectl binary against real gRPC servers (FakeStage: Admin + Queue on loopback,
// one per "stage"), checked the way scripts use it: the JSON document and the exit code --
// 0 ok, 1 partial failure, 2 usage, 3 not found, 4 token refused, 5 nothing reachable --
// and what the servers were actually asked. Also TLS and mTLS with throwaway certificates.
//
// Never: talks to a port it did not open (the "dead" port is one it closed itself).
#include <fcntl.h>
#include <netinet/in.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/tools/sluicectl/fake_stage.h"

extern char** environ;

namespace sluice::ctl {
namespace {

using ::sluice::ctl::testing::FakeStage;
using ::sluice::ctl::testing::FakeStageConfig;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;
namespace v1 = sluice::v1;
using Fields = google::protobuf::Map<std::string, google::protobuf::Value>;

struct CtlRun {
  int exit_code = -1;
  std::string out;
  std::string err;
};

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string TempPath(const std::string& tag) {
  std::string path = ::testing::TempDir() + "sluicectl_" + tag + "_XXXXXX";
  int fd = mkstemp(path.data());
  EXPECT_GE(fd, 0);
  close(fd);
  return path;
}

std::string WriteTemp(const std::string& tag, const std::string& content) {
  std::string path = TempPath(tag);
  std::ofstream(path) << content;
  return path;
}

// Runs build/bin/sluicectl with `args`; stdout and stderr go to files so neither can block.
CtlRun Sluicectl(std::vector<std::string> args) {
  std::string out_path = TempPath("out"), err_path = TempPath("err");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_TRUNC, 0);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_TRUNC, 0);
  std::vector<char*> argv;
  std::string binary = SLUICECTL_BINARY;
  argv.push_back(binary.data());
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  CtlRun run;
  int rc = posix_spawn(&pid, binary.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  EXPECT_EQ(rc, 0) << "cannot start " << binary;
  if (rc != 0) return run;
  int status = 0;
  waitpid(pid, &status, 0);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  run.out = ReadAll(out_path);
  run.err = ReadAll(err_path);
  std::remove(out_path.c_str());
  std::remove(err_path.c_str());
  return run;
}

// The JSON document's top-level members (the test fails if it is not JSON).
Fields Json(const CtlRun& run) {
  google::protobuf::Value value;
  auto status = google::protobuf::util::JsonStringToMessage(run.out, &value);
  EXPECT_TRUE(status.ok()) << status.ToString() << "\nstdout: " << run.out << "\nstderr: " << run.err;
  return value.struct_value().fields();
}

std::vector<std::string> Strings(const google::protobuf::Value& list) {
  std::vector<std::string> out;
  for (const auto& v : list.list_value().values()) out.push_back(v.string_value());
  return out;
}

// The `replica` labels of results[] (or errors[]).
std::vector<std::string> Replicas(const Fields& doc, const std::string& key = "results") {
  std::vector<std::string> out;
  for (const auto& v : doc.at(key).list_value().values()) out.push_back(v.struct_value().fields().at("replica").string_value());
  return out;
}

const Fields& Response(const Fields& doc, size_t i) {
  return doc.at("results").list_value().values(static_cast<int>(i)).struct_value().fields().at("response").struct_value().fields();
}

// A loopback port nobody listens on: bound, then closed.
int DeadPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

v1::SessionMetadata Session(const std::string& id, const std::string& stage, const std::string& client) {
  v1::SessionMetadata s;
  s.set_session_id(id);
  s.set_stage(stage);
  s.set_instance(stage + "-0");
  s.set_client_address(client);
  s.set_client_port(40000);
  s.set_helo("mx.example.org");
  s.set_protocol("ESMTP");
  s.set_state("data");
  s.set_complete(stage == "frontend");
  *s.mutable_connected_at() = google::protobuf::util::TimeUtil::GetCurrentTime();
  s.mutable_current()->set_mail_from("bob@example.org");
  s.mutable_current()->add_recipients()->set_address("alice@example.net");
  return s;
}

v1::QueueRecord Queued(const std::string& id, v1::QueueState state, const std::string& sender) {
  v1::QueueRecord r;
  r.set_queue_id(id);
  r.set_state(state);
  r.set_sender(sender);
  r.set_size_bytes(2048);
  r.add_recipients()->set_address("alice@example.net");
  return r;
}

v1::Limits BaseLimits() {
  v1::Limits l;
  l.set_max_sessions(100);
  l.set_per_client_connection_limit(50);
  l.set_proxy_timeout_seconds(100);
  l.add_limit_exemptions("127.0.0.0/8");
  return l;
}

class SluicectlBinaryTest : public ::testing::Test {
 protected:
  SluicectlBinaryTest()
      : fe_(Config("frontend", {Session("S1", "frontend", "192.0.2.1"), Session("S2", "frontend", "198.51.100.9")}, {})),
        fb_(Config("filter-bridge", {Session("S1", "filter-bridge", "192.0.2.1")}, {})),
        ri_(Config("reinject", {}, {Queued("Q1", v1::DEFERRED, "bob@example.org"), Queued("Q2", v1::HOLD, "")})) {}

  static FakeStageConfig Config(const std::string& stage, std::vector<v1::SessionMetadata> sessions,
                                std::vector<v1::QueueRecord> queue) {
    FakeStageConfig c;
    c.stage = stage;
    c.instance = stage + "-0";
    c.limits = BaseLimits();
    c.sessions = std::move(sessions);
    c.queue = std::move(queue);
    return c;
  }

  std::string AllStages() const { return "--admin=" + fe_.address() + "," + fb_.address() + "," + ri_.address(); }

  FakeStage fe_, fb_, ri_;
};

TEST_F(SluicectlBinaryTest, StatusJsonLabelsEveryReplica) {
  CtlRun run = Sluicectl({AllStages(), "--token=secret", "--output=json", "status"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  Fields doc = Json(run);
  EXPECT_EQ(doc.at("command").string_value(), "status");
  EXPECT_THAT(Replicas(doc), ElementsAre(fe_.address(), fb_.address(), ri_.address()));
  EXPECT_EQ(Response(doc, 0).at("stage").string_value(), "frontend");
  EXPECT_EQ(Response(doc, 0).at("state").string_value(), "SERVING");
  EXPECT_EQ(Response(doc, 0).at("sessions_active").number_value(), 2);
  EXPECT_EQ(Response(doc, 2).at("queue_messages").string_value(), "2");
  EXPECT_TRUE(doc.at("errors").list_value().values().empty());
  EXPECT_EQ(run.err, "");
}

TEST_F(SluicectlBinaryTest, StatusTableHasARowPerReplica) {
  CtlRun run = Sluicectl({AllStages(), "--token=secret", "status"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_THAT(run.out, HasSubstr("REPLICA"));
  EXPECT_THAT(run.out, HasSubstr(fe_.address() + "  frontend"));
  EXPECT_THAT(run.out, HasSubstr("filter-bridge  filter-bridge-0  SERVING"));
  EXPECT_THAT(run.out, HasSubstr("2 msgs 4.0 KiB"));
}

TEST_F(SluicectlBinaryTest, MissingTokenExitsFour) {
  CtlRun run = Sluicectl({"--admin=" + fe_.address(), "--output=json", "limits", "set", "max_sessions=10"});
  EXPECT_EQ(run.exit_code, 4) << run.out << run.err;
  Fields doc = Json(run);
  EXPECT_EQ(doc.at("errors").list_value().values(0).struct_value().fields().at("code").string_value(), "UNAUTHENTICATED");
  EXPECT_THAT(run.err, HasSubstr(fe_.address() + ": UNAUTHENTICATED"));
  EXPECT_EQ(fe_.limits().max_sessions(), 100u);
}

TEST_F(SluicectlBinaryTest, ReadsNeedNoToken) {
  // The stages leave reads open; sluicectl must not demand a token on its own.
  CtlRun run = Sluicectl({AllStages(), "status"});
  EXPECT_EQ(run.exit_code, 0) << run.err;
}

TEST_F(SluicectlBinaryTest, WrongTokenFromFileExitsFour) {
  std::string file = WriteTemp("token", "not-the-token\n");
  CtlRun run = Sluicectl({AllStages(), "--token_file=" + file, "drain"});
  EXPECT_EQ(run.exit_code, 4) << run.err;
  EXPECT_THAT(run.err, HasSubstr("PERMISSION_DENIED"));
  EXPECT_EQ(fe_.last_drain().ByteSizeLong(), 0u);  // never reached the handler
  std::remove(file.c_str());
}

TEST_F(SluicectlBinaryTest, TokenFileIsReadAndTrimmed) {
  std::string file = WriteTemp("token", "  secret\n");
  CtlRun run = Sluicectl({AllStages(), "--token_file=" + file, "resume"});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  std::remove(file.c_str());
}

TEST_F(SluicectlBinaryTest, NothingListeningExitsFive) {
  std::string dead = "127.0.0.1:" + std::to_string(DeadPort());
  CtlRun run = Sluicectl({"--admin=" + dead, "--token=secret", "--output=json", "--timeout=2s", "status"});
  EXPECT_EQ(run.exit_code, 5) << run.err;
  Fields doc = Json(run);
  EXPECT_TRUE(doc.at("results").list_value().values().empty());
  EXPECT_THAT(Replicas(doc, "errors"), ElementsAre(dead));
  EXPECT_EQ(doc.at("errors").list_value().values(0).struct_value().fields().at("code").string_value(), "UNAVAILABLE");
}

TEST_F(SluicectlBinaryTest, DefaultEndpointsUnreachableExitFive) {
  // Nothing of sluice runs in the test environment on 9101-9103 (if it did, this proves nothing
  // and is skipped rather than failing someone's `make run`).
  CtlRun run = Sluicectl({"--timeout=2s", "--stage=frontend", "status"});
  if (run.exit_code != 5) GTEST_SKIP() << "something answers on 127.0.0.1:9101";
  EXPECT_THAT(run.err, HasSubstr("127.0.0.1:9101: UNAVAILABLE"));
}

TEST_F(SluicectlBinaryTest, OneReplicaDownStillPrintsTheOthersAndExitsOne) {
  std::string dead = "127.0.0.1:" + std::to_string(DeadPort());
  CtlRun run = Sluicectl({"--admin=" + fe_.address() + "," + dead, "--token=secret", "--output=json", "sessions"});
  EXPECT_EQ(run.exit_code, 1) << run.err;
  Fields doc = Json(run);
  EXPECT_THAT(Replicas(doc), ElementsAre(fe_.address()));
  EXPECT_THAT(Replicas(doc, "errors"), ElementsAre(dead));
  EXPECT_EQ(Response(doc, 0).at("sessions").list_value().values_size(), 2);
}

TEST_F(SluicectlBinaryTest, SessionsAreMergedAndFiltered) {
  CtlRun all = Sluicectl({AllStages(), "--token=secret", "sessions"});
  ASSERT_EQ(all.exit_code, 0) << all.err;
  EXPECT_THAT(all.out, HasSubstr(fe_.address() + "  S1"));
  EXPECT_THAT(all.out, HasSubstr(fe_.address() + "  S2"));
  EXPECT_THAT(all.out, HasSubstr(fb_.address() + "  S1       filter-bridge"));

  CtlRun client = Sluicectl({AllStages(), "--token=secret", "--output=json", "sessions", "--client=198.51.100.9"});
  ASSERT_EQ(client.exit_code, 0) << client.err;
  Fields doc = Json(client);
  EXPECT_EQ(Response(doc, 0).at("sessions").list_value().values_size(), 1);
  EXPECT_EQ(Response(doc, 1).at("sessions").list_value().values_size(), 0);

  CtlRun stage = Sluicectl({AllStages(), "--token=secret", "--output=json", "sessions", "--stage=filter-bridge"});
  ASSERT_EQ(stage.exit_code, 0) << stage.err;
  doc = Json(stage);
  EXPECT_EQ(Response(doc, 0).at("sessions").list_value().values_size(), 0);
  EXPECT_EQ(Response(doc, 1).at("sessions").list_value().values_size(), 1);
}

TEST_F(SluicectlBinaryTest, SessionShowsEveryStageWhereItIsLive) {
  CtlRun run = Sluicectl({AllStages(), "--token=secret", "--output=json", "session", "S1"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  Fields doc = Json(run);
  EXPECT_EQ(doc.at("session_id").string_value(), "S1");
  EXPECT_THAT(Replicas(doc), ElementsAre(fe_.address(), fb_.address()));
  EXPECT_THAT(Strings(doc.at("not_found")), ElementsAre(ri_.address()));
  EXPECT_EQ(Response(doc, 1).at("stage").string_value(), "filter-bridge");

  CtlRun table = Sluicectl({AllStages(), "--token=secret", "session", "S1"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_THAT(table.out, HasSubstr("not live at: " + ri_.address()));
  EXPECT_THAT(table.out, HasSubstr("record (frontend):"));
  EXPECT_THAT(table.out, HasSubstr("current.recipients[0].address:"));
}

TEST_F(SluicectlBinaryTest, SessionNowhereExitsThree) {
  CtlRun run = Sluicectl({AllStages(), "--token=secret", "--output=json", "session", "NOPE"});
  EXPECT_EQ(run.exit_code, 3) << run.err;
  Fields doc = Json(run);
  EXPECT_TRUE(doc.at("results").list_value().values().empty());
  EXPECT_EQ(doc.at("not_found").list_value().values_size(), 3);
  EXPECT_TRUE(doc.at("errors").list_value().values().empty());
  EXPECT_THAT(run.err, HasSubstr("session NOPE is not live on any replica"));
}

TEST_F(SluicectlBinaryTest, KillEndsTheSessionWhereverItIsLive) {
  CtlRun run = Sluicectl({AllStages(), "--token=secret", "kill", "S1"});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_THAT(fe_.killed(), ElementsAre("S1"));
  EXPECT_THAT(fb_.killed(), ElementsAre("S1"));
  CtlRun again = Sluicectl({AllStages(), "--token=secret", "kill", "S1"});
  EXPECT_EQ(again.exit_code, 3) << again.err;
}

TEST_F(SluicectlBinaryTest, LimitsSetSendsTypedValuesAndMaskToEveryReplica) {
  CtlRun run = Sluicectl({AllStages(), "--token=secret", "--output=json", "limits", "set", "proxy_timeout_seconds=5m",
                       "limit_exemptions=10.0.0.0/8,::1/128"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  for (FakeStage* stage : {&fe_, &fb_, &ri_}) {
    auto updates = stage->limit_updates();
    ASSERT_EQ(updates.size(), 1u);
    EXPECT_THAT(updates[0].update_mask().paths(), ElementsAre("proxy_timeout_seconds", "limit_exemptions"));
    EXPECT_EQ(updates[0].limits().proxy_timeout_seconds(), 300u);
    EXPECT_FALSE(updates[0].limits().has_max_sessions());
    EXPECT_THAT(stage->limits().limit_exemptions(), ElementsAre("10.0.0.0/8", "::1/128"));
    EXPECT_EQ(stage->limits().max_sessions(), 100u);  // untouched
  }
  Fields doc = Json(run);
  EXPECT_EQ(Response(doc, 0).at("proxy_timeout_seconds").number_value(), 300);
  EXPECT_TRUE(doc.at("drift").list_value().values().empty());
}

TEST_F(SluicectlBinaryTest, LimitsSetUnknownKeyExitsTwoAndChangesNothing) {
  CtlRun run = Sluicectl({AllStages(), "--token=secret", "limits", "set", "max_sessions=10", "proxy_timout_seconds=5"});
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_THAT(run.err, HasSubstr("unknown limit key \"proxy_timout_seconds\""));
  EXPECT_TRUE(fe_.limit_updates().empty());
  EXPECT_TRUE(ri_.limit_updates().empty());
}

TEST_F(SluicectlBinaryTest, LimitsGetShowsDriftBetweenReplicas) {
  ASSERT_EQ(Sluicectl({"--admin=" + fb_.address(), "--token=secret", "limits", "set", "max_sessions=50"}).exit_code, 0);
  CtlRun json = Sluicectl({AllStages(), "--token=secret", "--output=json", "limits", "get"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  EXPECT_THAT(Strings(Json(json).at("drift")), ElementsAre("max_sessions"));

  CtlRun table = Sluicectl({AllStages(), "--token=secret", "limits", "get"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  std::string header = table.out.substr(0, table.out.find('\n'));
  EXPECT_THAT(header, HasSubstr(fe_.address()));
  EXPECT_THAT(header, HasSubstr(fb_.address()));
  EXPECT_THAT(header, HasSubstr("DRIFT"));
  std::string row = table.out.substr(table.out.find("\nmax_sessions"));
  row = row.substr(1, row.find('\n', 1) - 1);
  EXPECT_THAT(row, ::testing::MatchesRegex("max_sessions +100 +50 +100 +drift"));
  EXPECT_THAT(table.out, HasSubstr("proxy_timeout_seconds"));
}

TEST_F(SluicectlBinaryTest, DrainSendsItsTimeoutAndResumeServesAgain) {
  CtlRun drain = Sluicectl({AllStages(), "--token=secret", "--output=json", "drain", "--timeout=30s"});
  ASSERT_EQ(drain.exit_code, 0) << drain.err;
  EXPECT_EQ(fe_.last_drain().timeout_seconds(), 30u);
  EXPECT_EQ(Response(Json(drain), 0).at("state").string_value(), "DRAINING");
  CtlRun resume = Sluicectl({AllStages(), "--token=secret", "--output=json", "resume"});
  ASSERT_EQ(resume.exit_code, 0) << resume.err;
  EXPECT_EQ(Response(Json(resume), 2).at("state").string_value(), "SERVING");
}

TEST_F(SluicectlBinaryTest, QueueListPassesFilters) {
  CtlRun run = Sluicectl({"--admin=" + ri_.address(), "--token=secret", "--output=json", "queue", "list", "--state=deferred",
                       "--sender=bob"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  ASSERT_EQ(ri_.queue_lists().size(), 1u);
  EXPECT_EQ(ri_.queue_lists()[0].state(), v1::DEFERRED);
  EXPECT_EQ(ri_.queue_lists()[0].sender(), "bob");
  Fields doc = Json(run);
  const auto& records = Response(doc, 0).at("records").list_value().values();
  ASSERT_EQ(records.size(), 1);
  EXPECT_EQ(records[0].struct_value().fields().at("queue_id").string_value(), "Q1");

  CtlRun table = Sluicectl({"--admin=" + ri_.address(), "--token=secret", "queue", "list"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_THAT(table.out, HasSubstr("Q2        hold"));
  EXPECT_THAT(table.out, HasSubstr("<>"));
  EXPECT_THAT(table.out, HasSubstr("-- " + ri_.address() + ": 2 shown of 2 messages"));
}

TEST_F(SluicectlBinaryTest, QueueHoldNamesIdsFoundNowhereAndExitsThree) {
  CtlRun run = Sluicectl({"--admin=" + ri_.address(), "--token=secret", "--output=json", "queue", "hold", "Q1", "Q9",
                       "--reason=looks like spam"});
  EXPECT_EQ(run.exit_code, 3) << run.err;
  EXPECT_THAT(Strings(Json(run).at("not_found")), ElementsAre("Q9"));
  ASSERT_EQ(ri_.queue_actions().size(), 1u);
  EXPECT_THAT(ri_.queue_actions()[0].queue_ids(), ElementsAre("Q1", "Q9"));
  EXPECT_EQ(ri_.queue_actions()[0].reason(), "looks like spam");
  EXPECT_THAT(run.err, HasSubstr("Q9"));
}

TEST_F(SluicectlBinaryTest, QueueActionSkipsAnIdInAnotherStateWithoutCallingItMissing) {
  // Q1 is deferred, not on hold: release leaves it as it is; Q2 is held and released.
  CtlRun run = Sluicectl({AllStages(), "--token=secret", "--output=json", "queue", "release", "Q1", "Q2"});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  Fields doc = Json(run);
  EXPECT_THAT(Strings(doc.at("skipped")), ElementsAre("Q1"));
  EXPECT_THAT(Strings(doc.at("not_found")), ElementsAre());
  EXPECT_THAT(run.err, HasSubstr("queue id Q1 left as it is"));
  CtlRun missing = Sluicectl({AllStages(), "--token=secret", "--output=json", "queue", "release", "Q1", "Q9"});
  EXPECT_EQ(missing.exit_code, 3) << missing.err;
  EXPECT_THAT(Strings(Json(missing).at("not_found")), ElementsAre("Q9"));
  EXPECT_THAT(Strings(Json(missing).at("skipped")), ElementsAre("Q1"));
  CtlRun table = Sluicectl({"--admin=" + ri_.address(), "--token=secret", "queue", "release", "Q1"});
  EXPECT_EQ(table.exit_code, 0) << table.err;
  EXPECT_THAT(table.out, HasSubstr("Q1"));
  EXPECT_THAT(table.out, HasSubstr("skipped"));
}

TEST_F(SluicectlBinaryTest, QueueFlushWithoutIdsAsksForAll) {
  CtlRun run = Sluicectl({"--admin=" + ri_.address(), "--token=secret", "queue", "flush"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  ASSERT_EQ(ri_.queue_actions().size(), 1u);
  EXPECT_TRUE(ri_.queue_actions()[0].all());
  EXPECT_THAT(run.out, HasSubstr("Q1        flushed"));
}

TEST_F(SluicectlBinaryTest, QueueShowPrintsRecordAndHeadersOrExitsThree) {
  CtlRun run = Sluicectl({"--admin=" + ri_.address(), "--token=secret", "queue", "show", "Q1"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_THAT(run.out, HasSubstr("queue_id:"));
  EXPECT_THAT(run.out, HasSubstr("state:"));
  EXPECT_THAT(run.out, HasSubstr("deferred"));
  EXPECT_THAT(run.out, HasSubstr("headers:\nFrom: <bob@example.org>"));
  EXPECT_EQ(Sluicectl({"--admin=" + ri_.address(), "--token=secret", "queue", "show", "Q9"}).exit_code, 3);
}

TEST_F(SluicectlBinaryTest, DnsNameReachesEveryAddressItResolvesTo) {
  CtlRun run = Sluicectl({"--admin=localhost:" + std::to_string(fe_.port()), "--token=secret", "--output=json", "--timeout=2s",
                       "status"});
  // localhost may also resolve to ::1, where nothing listens: then that replica fails (exit 1).
  ASSERT_TRUE(run.exit_code == 0 || run.exit_code == 1) << run.err;
  Fields doc = Json(run);
  EXPECT_THAT(Replicas(doc), ElementsAre("127.0.0.1:" + std::to_string(fe_.port())));
}

TEST_F(SluicectlBinaryTest, UnknownFlagExitsTwoNamingIt) {
  CtlRun run = Sluicectl({AllStages(), "status", "--watch"});
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_THAT(run.err, HasSubstr("--watch"));
  EXPECT_EQ(run.out, "");
}

TEST_F(SluicectlBinaryTest, HelpExitsZero) {
  CtlRun run = Sluicectl({"--help"});
  EXPECT_EQ(run.exit_code, 0);
  EXPECT_THAT(run.out, HasSubstr("Exit codes"));
}

// ---- TLS ----

// A self-signed certificate for DNS:localhost (EC P-256: quick to make), or "" without openssl.
struct CertFiles {
  std::string cert, key;
};

CertFiles MakeCert(const std::string& tag, const std::string& cn) {
  CertFiles files{TempPath(tag + "_cert"), TempPath(tag + "_key")};
  std::string cmd = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=" + cn +
                    " -addext subjectAltName=DNS:" + cn + " -keyout " + files.key + " -out " + files.cert +
                    " >/dev/null 2>&1";
  if (std::system(cmd.c_str()) != 0) return {};
  return files;
}

class SluicectlTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = MakeCert("server", "localhost");
    client_ = MakeCert("client", "sluicectl");
    if (server_.cert.empty() || client_.cert.empty()) GTEST_SKIP() << "openssl cannot make test certificates";
  }
  void TearDown() override {
    for (const auto& f : {server_.cert, server_.key, client_.cert, client_.key}) std::remove(f.c_str());
  }

  std::unique_ptr<FakeStage> Start(bool require_client_cert) {
    FakeStageConfig config;
    config.limits = BaseLimits();
    config.tls.set_cert_file(server_.cert);
    config.tls.set_key_file(server_.key);
    if (require_client_cert) {
      config.tls.set_ca_file(client_.cert);  // self-signed: its own CA
      config.tls.set_require_client_cert(true);
    }
    return std::make_unique<FakeStage>(config);
  }

  CertFiles server_, client_;
};

TEST_F(SluicectlTlsTest, VerifiesTheServerByTheNameTypedNotTheAddressDialled) {
  auto stage = Start(/*require_client_cert=*/false);
  std::string admin = "--admin=localhost:" + std::to_string(stage->port());
  CtlRun run = Sluicectl({admin, "--tls_ca=" + server_.cert, "--token=secret", "--output=json", "--timeout=3s", "status"});
  ASSERT_TRUE(run.exit_code == 0 || run.exit_code == 1) << run.err;  // 1: localhost's ::1, if any
  EXPECT_THAT(Replicas(Json(run)), ElementsAre("127.0.0.1:" + std::to_string(stage->port())));

  // The certificate names localhost, not 127.0.0.1: dialling the literal must fail verification.
  CtlRun literal = Sluicectl({"--admin=" + stage->address(), "--tls_ca=" + server_.cert, "--token=secret", "--timeout=3s",
                           "status"});
  EXPECT_EQ(literal.exit_code, 5) << literal.err;
  // Plaintext to a TLS endpoint gets nowhere either.
  EXPECT_EQ(Sluicectl({admin, "--token=secret", "--timeout=3s", "status"}).exit_code, 5);
}

TEST_F(SluicectlTlsTest, PresentsTheClientCertificateForMutualTls) {
  auto stage = Start(/*require_client_cert=*/true);
  std::string admin = "--admin=localhost:" + std::to_string(stage->port());
  CtlRun run = Sluicectl({admin, "--tls_ca=" + server_.cert, "--tls_cert=" + client_.cert, "--tls_key=" + client_.key,
                       "--token=secret", "--output=json", "--timeout=3s", "limits", "get"});
  ASSERT_TRUE(run.exit_code == 0 || run.exit_code == 1) << run.err;
  EXPECT_THAT(Replicas(Json(run)), ElementsAre("127.0.0.1:" + std::to_string(stage->port())));
  CtlRun without = Sluicectl({admin, "--tls_ca=" + server_.cert, "--token=secret", "--timeout=3s", "limits", "get"});
  EXPECT_EQ(without.exit_code, 5) << without.err;
}

}  // namespace
}  // namespace sluice::ctl
