// tests/services/reinject/queue/queue_kill_test.cc -- a real crash: a child process commits
// and is SIGKILLed the moment Commit has returned; the parent reopens the queue and finds
// the message. And a child killed mid-message leaves no entry behind.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "lib/status/status_matchers.h"
#include "services/reinject/queue/queue_store.h"
#include "tests/services/reinject/testing/queue_test_support.h"

namespace sluice::reinject {
namespace {

using ::sluice::reinject::testing::CommitAsync;
using ::sluice::reinject::testing::Envelope;
using ::sluice::reinject::testing::kMessage;
using ::sluice::reinject::testing::ListDir;
using ::sluice::reinject::testing::ReadFile;
using ::sluice::reinject::testing::RunAwaitable;
using ::sluice::reinject::testing::TempDir;
using ::sluice::testing::IsOk;

void WriteLine(int fd, const std::string& line) {
  std::string s = line + "\n";
  (void)!::write(fd, s.data(), s.size());
}

std::string ReadLine(int fd) {
  std::string out;
  char c;
  while (::read(fd, &c, 1) == 1 && c != '\n') out.push_back(c);
  return out;
}

// Forks; the child runs `body(write_fd)` and then waits to be killed.
pid_t ForkChild(int pipe_fds[2], const std::function<void(int)>& body) {
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(pipe_fds[0]);
    body(pipe_fds[1]);
    for (;;) ::pause();
  }
  ::close(pipe_fds[1]);
  return pid;
}

void KillAndReap(pid_t pid) {
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
}

TEST(QueueKillTest, MessageCommittedBeforeSigkillIsRecovered) {
  TempDir dir;
  const std::string queue_dir = dir / "queue";
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  pid_t pid = ForkChild(fds, [&](int out) {
    asio::io_context io;
    QueueStoreOptions o;
    o.queue_dir = queue_dir;
    auto store = QueueStore::Open(std::move(o));
    if (!store.ok()) ::_exit(2);
    auto record = Envelope("alice@example.org", {"bob@example.com"});
    record.set_session_id("KILLTEST");
    auto id = RunAwaitable(io, CommitAsync(**store, kMessage, record));
    if (!id.ok()) ::_exit(3);
    WriteLine(out, "committed " + *id);  // the "250 ... queued as" moment
  });
  ASSERT_GT(pid, 0);
  std::string line = ReadLine(fds[0]);
  ::close(fds[0]);
  ASSERT_EQ(line.rfind("committed ", 0), 0u) << "child said: " << line;
  std::string id = line.substr(10);
  KillAndReap(pid);

  QueueStoreOptions o;
  o.queue_dir = queue_dir;
  auto store = QueueStore::Open(std::move(o));
  ASSERT_THAT(store, IsOk());
  auto entry = (*store)->Get(id);
  ASSERT_THAT(entry, IsOk());
  EXPECT_EQ(entry->record().session_id(), "KILLTEST");
  EXPECT_EQ(entry->record().recipients(0).address(), "bob@example.com");
  EXPECT_EQ(::sluice::reinject::testing::ContentOf(**store, id), kMessage);
  EXPECT_EQ((*store)->recovery().recovered[sluice::v1::INCOMING], 1u);
}

TEST(QueueKillTest, MessageKilledBeforeCommitLeavesNoEntry) {
  TempDir dir;
  const std::string queue_dir = dir / "queue";
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  pid_t pid = ForkChild(fds, [&](int out) {
    QueueStoreOptions o;
    o.queue_dir = queue_dir;
    auto store = QueueStore::Open(std::move(o));
    if (!store.ok()) ::_exit(2);
    auto writer = (*store)->Begin();
    if (!writer.ok()) ::_exit(3);
    for (int i = 0; i < 100; ++i) {  // 400 KB: over the buffer, spilled to large/
      if (!(*writer)->Append(std::string(4096, 'q')).ok()) ::_exit(4);
    }
    WriteLine(out, "writing " + (*writer)->id());
    for (;;) ::pause();  // killed in the middle of DATA
  });
  ASSERT_GT(pid, 0);
  std::string line = ReadLine(fds[0]);
  ::close(fds[0]);
  ASSERT_EQ(line.rfind("writing ", 0), 0u) << "child said: " << line;
  KillAndReap(pid);
  EXPECT_EQ(ListDir(queue_dir + "/large").size(), 1u);  // the half-written message

  QueueStoreOptions o;
  o.queue_dir = queue_dir;
  auto store = QueueStore::Open(std::move(o));
  ASSERT_THAT(store, IsOk());
  EXPECT_EQ((*store)->recovery().orphan_data_deleted, 1u);
  EXPECT_TRUE(ListDir(queue_dir + "/large").empty());
  EXPECT_EQ((*store)->recovery().moved_to_corrupt, 0u);
  EXPECT_EQ((*store)->List(QueueListFilter()).total_messages, 0u);
}

}  // namespace
}  // namespace sluice::reinject
