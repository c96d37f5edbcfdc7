// tests/lib/redis/redis_connection_test.cc
//
// hiredis's async context driven by Asio, against a real redis-server (Debian's) started by
// the test on a free loopback port with no persistence: replies of every shape, an error
// reply as a value, a refused connect, a stopped server (SIGSTOP) giving DEADLINE_EXCEEDED
// at the command's own deadline instead of a wait, a killed server reported as a loss with
// the waiting commands failed, and Close() failing what waits without calling it a loss.
//
// Never: leaves redis-server running (stopped by its PID); listens beyond 127.0.0.1.
#include "lib/redis/redis_connection.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <optional>
#include <thread>

#include "asio/io_context.hpp"

namespace sluice::redis {
namespace {

using namespace std::chrono_literals;

constexpr const char* kRedisServer = "/usr/bin/redis-server";

uint16_t FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  uint16_t port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  ::close(fd);
  return port;
}

bool PortOpen(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

// redis-server on 127.0.0.1:port, no RDB/AOF, its output discarded; SIGKILLed by PID at the end.
class RedisProcess {
 public:
  RedisProcess() : port_(FreePort()) {
    pid_ = ::fork();
    if (pid_ == 0) {
      int null = ::open("/dev/null", O_WRONLY);
      ::dup2(null, 1);
      ::dup2(null, 2);
      ::setsid();
      std::string port = std::to_string(port_);
      ::execl(kRedisServer, kRedisServer, "--bind", "127.0.0.1", "--port", port.c_str(), "--save", "", "--appendonly",
              "no", "--dir", "/tmp", "--daemonize", "no", static_cast<char*>(nullptr));
      ::_exit(127);
    }
    for (int i = 0; i < 1000 && !PortOpen(port_); ++i) std::this_thread::sleep_for(20ms);
  }
  ~RedisProcess() { Kill(); }
  void Signal(int sig) { ::kill(pid_, sig); }
  void Kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }
  uint16_t port() const { return port_; }

 private:
  uint16_t port_;
  pid_t pid_ = -1;
};

class RedisConnectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access(kRedisServer, X_OK) != 0) GTEST_SKIP() << "redis-server is not installed";
  }

  // Runs the loop until `done` holds (or 10 s pass).
  template <typename Pred>
  void RunUntil(Pred done) {
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!done() && std::chrono::steady_clock::now() < deadline) {
      io_.restart();
      io_.run_for(10ms);
    }
  }

  std::shared_ptr<RedisConnection> Connected(uint16_t port) {
    auto c = RedisConnection::Create(io_.get_executor());
    std::optional<absl::Status> st;
    c->Connect("127.0.0.1", port, 2000ms, [&](absl::Status s) { st = s; });
    RunUntil([&] { return st.has_value(); });
    EXPECT_TRUE(st.has_value() && st->ok()) << (st ? st->ToString() : "no answer");
    return c;
  }

  RedisConnection::Reply Send(RedisConnection& c, std::vector<std::string> argv,
                              std::chrono::milliseconds timeout = 2000ms) {
    std::optional<RedisConnection::Reply> r;
    c.Command(argv, timeout, [&](RedisConnection::Reply reply) { r = std::move(reply); });
    RunUntil([&] { return r.has_value(); });
    if (!r) return absl::InternalError("the callback never ran");
    return *std::move(r);
  }

  asio::io_context io_;
};

TEST_F(RedisConnectionTest, RepliesOfEveryShape) {
  RedisProcess redis;
  auto c = Connected(redis.port());
  ASSERT_TRUE(c->connected());
  auto r = Send(*c, {"SET", "k", std::string("v\0w", 3)});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->str, "OK");
  r = Send(*c, {"GET", "k"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->str, std::string("v\0w", 3));
  r = Send(*c, {"EVAL", "return {1, 'x', redis.call('INCR', KEYS[1])}", "1", "n"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->DebugString(), "[(integer) 1, \"x\", (integer) 1]");
  r = Send(*c, {"NO-SUCH-COMMAND"});
  ASSERT_TRUE(r.ok()) << "an error reply is a value, not a failure";
  EXPECT_TRUE(r->is_error()) << r->DebugString();
  r = Send(*c, {"PING"});
  ASSERT_TRUE(r.ok()) << "the connection goes on after an error reply";
  EXPECT_EQ(r->str, "PONG");
}

TEST_F(RedisConnectionTest, PipelinedCommandsAnswerInOrder) {
  RedisProcess redis;
  auto c = Connected(redis.port());
  std::vector<int64_t> seen;
  for (int i = 0; i < 50; ++i) {
    c->Command({"INCR", "n"}, 2000ms, [&](RedisConnection::Reply r) { seen.push_back(r.ok() ? r->integer : -1); });
  }
  RunUntil([&] { return seen.size() == 50; });
  ASSERT_EQ(seen.size(), 50u);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(seen[i], i + 1);
}

TEST_F(RedisConnectionTest, ARefusedConnectIsUnavailable) {
  auto c = RedisConnection::Create(io_.get_executor());
  std::optional<absl::Status> st;
  c->Connect("127.0.0.1", FreePort(), 2000ms, [&](absl::Status s) { st = s; });
  RunUntil([&] { return st.has_value(); });
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->code(), absl::StatusCode::kUnavailable) << *st;
  EXPECT_FALSE(c->connected());
  EXPECT_EQ(Send(*c, {"PING"}).status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(RedisConnectionTest, AStoppedServerGivesADeadlineNotAWait) {
  RedisProcess redis;
  auto c = Connected(redis.port());
  redis.Signal(SIGSTOP);
  auto started = std::chrono::steady_clock::now();
  auto r = Send(*c, {"PING"}, 50ms);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded) << r.status();
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
  redis.Signal(SIGCONT);
  // The late PONG is dropped; the next command gets its own reply.
  r = Send(*c, {"ECHO", "after"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->str, "after");
}

TEST_F(RedisConnectionTest, AConnectToAStoppedServerTimesOut) {
  RedisProcess redis;
  redis.Signal(SIGSTOP);  // the kernel still accepts; nothing answers
  auto c = Connected(redis.port());  // TCP connect succeeds
  auto r = Send(*c, {"PING"}, 100ms);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded) << r.status();
  redis.Signal(SIGCONT);
}

TEST_F(RedisConnectionTest, AKilledServerIsALossAndFailsWhatWaits) {
  RedisProcess redis;
  auto c = Connected(redis.port());
  std::optional<absl::Status> lost;
  c->OnLost([&](absl::Status s) { lost = s; });
  redis.Signal(SIGSTOP);
  std::optional<RedisConnection::Reply> r;
  c->Command({"PING"}, 10000ms, [&](RedisConnection::Reply reply) { r = std::move(reply); });
  redis.Kill();
  RunUntil([&] { return r.has_value() && lost.has_value(); });
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status().code(), absl::StatusCode::kUnavailable) << r->status();
  ASSERT_TRUE(lost.has_value());
  EXPECT_EQ(lost->code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(c->connected());
}

TEST_F(RedisConnectionTest, CloseFailsWhatWaitsAndIsNoLoss) {
  RedisProcess redis;
  auto c = Connected(redis.port());
  bool lost = false;
  c->OnLost([&](absl::Status) { lost = true; });
  redis.Signal(SIGSTOP);
  std::optional<RedisConnection::Reply> r;
  c->Command({"PING"}, 10000ms, [&](RedisConnection::Reply reply) { r = std::move(reply); });
  c->Close();
  c->Close();
  RunUntil([&] { return r.has_value(); });
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status().code(), absl::StatusCode::kUnavailable);
  io_.restart();
  io_.run_for(50ms);
  EXPECT_FALSE(lost);
  redis.Signal(SIGCONT);
}

}  // namespace
}  // namespace sluice::redis
