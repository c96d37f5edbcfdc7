// tests/services/filter-bridge/opendkim_test.cc
//
// The milter client against a real milter from Debian: OpenDKIM (Mode sv) signs a message
// run through the filter chain; the DKIM-Signature comes back as a header edit, the chain's
// output carries it, and `opendkim -t` verifies the written message offline with the
// generated key (TestPublicKeys). A tampered copy must fail the same check, so the check can
// fail. OpenDKIM runs as a child process, stopped by its PID.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <fstream>
#include <sstream>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "lib/status/status_matchers.h"
#include "services/filter-bridge/filters/filter_chain.h"
#include "tests/services/filter-bridge/filter_test_support.h"

extern char** environ;

namespace sluice::filter_bridge {
namespace {

using ::sluice::testing::IsOk;
using ::testing::HasSubstr;

// Starts argv[0] with stdout/stderr to `log`; returns the PID (or -1).
pid_t Spawn(const std::vector<std::string>& argv, const std::string& log) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid = -1;
  if (posix_spawn(&pid, args[0], &fa, nullptr, args.data(), environ) != 0) pid = -1;
  posix_spawn_file_actions_destroy(&fa);
  return pid;
}

// Runs a command to completion; returns its exit status (or -1).
int RunToEnd(const std::vector<std::string>& argv, const std::string& log) {
  pid_t pid = Spawn(argv, log);
  if (pid < 0) return -1;
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

uint16_t FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

bool Accepts(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
  ::close(fd);
  return ok;
}

const char kMessage[] =
    "From: Alice <alice@example.com>\r\n"
    "To: Bob <bob@example.net>\r\n"
    "Subject: signed by OpenDKIM\r\n"
    "  through the sluice milter client\r\n"
    "Date: Tue, 01 Jan 2030 00:00:00 +0000\r\n"
    "Message-ID: <dkim-test-1@example.com>\r\n"
    "\r\n"
    "Hello Bob,\r\n"
    "\r\n"
    ".this line started with a dot on the wire\r\n"
    "Regards, Alice\r\n";

class OpenDkimTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access("/usr/sbin/opendkim", X_OK) != 0) GTEST_SKIP() << "opendkim is not installed";
    char tmpl[] = "/tmp/sluice-opendkim-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    log_ = dir_ + "/log";
    ASSERT_EQ(RunToEnd({"/usr/sbin/opendkim-genkey", "-D", dir_, "-d", "example.com", "-s", "test"}, log_), 0)
        << ReadFile(log_);
    port_ = FreePort();
    WriteFile(dir_ + "/sign.conf",
              "Syslog no\n"
              "Socket inet:" + std::to_string(port_) + "@127.0.0.1\n"
              "Mode sv\n"
              "Domain example.com\n"
              "Selector test\n"
              "KeyFile " + dir_ + "/test.private\n"
              "RequireSafeKeys no\n"
              "Canonicalization simple/simple\n");
    pid_ = Spawn({"/usr/sbin/opendkim", "-f", "-x", dir_ + "/sign.conf"}, log_);
    ASSERT_GT(pid_, 0);
    for (int i = 0; i < 300 && !Accepts(port_); ++i) {
      int status;
      ASSERT_EQ(::waitpid(pid_, &status, WNOHANG), 0) << "opendkim exited: " << ReadFile(log_);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ASSERT_TRUE(Accepts(port_)) << ReadFile(log_);
  }

  void TearDown() override {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int status;
      ::waitpid(pid_, &status, 0);
    }
    if (!dir_.empty()) {
      for (const char* f : {"/test.private", "/test.txt", "/sign.conf", "/verify.conf", "/keys",
                            "/msg.eml", "/tampered.eml", "/log"}) {
        ::unlink((dir_ + f).c_str());
      }
      ::rmdir(dir_.c_str());
    }
  }

  // The public key (p=...) of opendkim-genkey's test.txt: the quoted strings joined.
  std::string PublicKey() {
    const std::string txt = ReadFile(dir_ + "/test.txt");
    std::string joined;
    for (size_t open = txt.find('"'); open != std::string::npos; open = txt.find('"', open)) {
      const size_t close = txt.find('"', open + 1);
      if (close == std::string::npos) break;
      joined += txt.substr(open + 1, close - open - 1);
      open = close + 1;
    }
    const size_t p = joined.find("p=");
    EXPECT_NE(p, std::string::npos) << txt;
    if (p == std::string::npos) return "";
    size_t end = p + 2;
    while (end < joined.size() && (std::isalnum(static_cast<unsigned char>(joined[end])) ||
                                   joined[end] == '+' || joined[end] == '/' || joined[end] == '=')) {
      ++end;
    }
    return joined.substr(p + 2, end - p - 2);
  }

  // Verifies a message file offline; returns what opendkim said (its exit status is 0 for a
  // bad signature too, so the report is what counts).
  std::string Verify(const std::string& file) {
    WriteFile(dir_ + "/keys", "test._domainkey.example.com v=DKIM1; k=rsa; p=" + PublicKey() + "\n");
    WriteFile(dir_ + "/verify.conf", "Syslog no\nMode v\nTestPublicKeys " + dir_ + "/keys\n");
    const std::string log = dir_ + "/verify.log";
    EXPECT_EQ(RunToEnd({"/usr/sbin/opendkim", "-x", dir_ + "/verify.conf", "-t", file}, log), 0);
    std::string output = ReadFile(log);
    ::unlink(log.c_str());
    return output;
  }

  std::string dir_;
  std::string log_;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
};

TEST_F(OpenDkimTest, SignsThroughTheChainAndTheSignatureVerifies) {
  sluice::v1::FilterBridgeConfig config;
  config.mutable_server()->set_hostname("filter.test.example");
  config.set_trace_header("X-Sluice-Filter");
  sluice::v1::FilterConfig* f = config.add_filters();
  f->set_name("opendkim");
  f->mutable_milter()->set_address("inet:127.0.0.1:" + std::to_string(port_));
  f->mutable_milter()->set_command_timeout_seconds(20);
  f->mutable_milter()->set_content_timeout_seconds(20);
  auto chain = FilterChain::Create(config, nullptr);
  ASSERT_THAT(chain, IsOk());

  auto spool = testing::MakeSpool(kMessage);
  sluice::v1::SessionMetadata session = testing::MakeSession();
  session.set_client_address("127.0.0.1");  // OpenDKIM signs for its InternalHosts
  session.set_client_name("localhost");
  ChainInput input;
  input.session = &session;
  input.envelope = testing::MakeEnvelope();
  input.spool = spool.get();
  input.deadline = Clock::now() + std::chrono::seconds(60);
  ChainResult result = testing::RunAwaitable((*chain)->Run(input));

  ASSERT_EQ(result.action, ChainResult::Action::kDeliver) << result.reply.ToString();
  ASSERT_EQ(result.results.size(), 1u);
  EXPECT_EQ(result.results[0].verdict(), "continue") << result.results[0].detail();
  const std::string out = testing::WriteToString(*spool, result.edits);
  EXPECT_THAT(out, HasSubstr("DKIM-Signature: v=1; a=rsa-sha256;"));
  EXPECT_THAT(out, HasSubstr("d=example.com"));
  EXPECT_THAT(out, ::testing::StartsWith("X-Sluice-Filter: filter.test.example; opendkim=continue ("));
  // Everything OpenDKIM signed is still byte for byte what the sender sent.
  EXPECT_THAT(out, HasSubstr(std::string(kMessage)));

  WriteFile(dir_ + "/msg.eml", out);
  const std::string good = Verify(dir_ + "/msg.eml");
  EXPECT_THAT(good, HasSubstr("verification (s=test, d=example.com, 2048-bit key) succeeded")) << out;
  EXPECT_THAT(good, ::testing::Not(HasSubstr("failed")));

  std::string tampered = out;
  tampered.replace(tampered.find("Regards, Alice"), 14, "Regards, Mallory");
  WriteFile(dir_ + "/tampered.eml", tampered);
  const std::string bad = Verify(dir_ + "/tampered.eml");
  EXPECT_THAT(bad, HasSubstr("signature verification failed"));
  EXPECT_THAT(bad, ::testing::Not(HasSubstr("succeeded")));
}

}  // namespace
}  // namespace sluice::filter_bridge
