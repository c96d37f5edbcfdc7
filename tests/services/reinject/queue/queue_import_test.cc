// tests/services/reinject/queue/queue_import_test.cc -- the upgrade from the earlier queue
// layout: the test writes the old files itself, as the old code did (data/<ID>, the record
// "SQR1"-framed in the state directory, corrupt/ beside), and opens the store. Every entry
// comes out with its id, state, record and content; the broken ones go to corrupt/ saying
// why; the old files go once the import is durable; a real SIGKILL at any point of the
// import, then a restart, leaves every entry exactly once.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <filesystem>

#include <gtest/gtest.h>

#include "lib/status/status_matchers.h"
#include "services/reinject/queue/proto_time.h"
#include "services/reinject/queue/queue_store.h"
#include "tests/services/reinject/testing/queue_test_support.h"

namespace sluice::reinject {
namespace {

using ::sluice::reinject::testing::ContentOf;
using ::sluice::reinject::testing::Exists;
using ::sluice::reinject::testing::ListDir;
using ::sluice::reinject::testing::TempDir;
using ::sluice::reinject::testing::WriteFile;
using ::sluice::testing::IsOk;

// The earlier layout's record file, byte for byte as its EncodeRecord wrote it.
std::string OldRecordFile(const sluice::v1::QueueRecord& record) {
  std::string payload;
  record.SerializeToString(&payload);
  auto le32 = [](uint32_t v) {
    std::string out;
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    return out;
  };
  uLong crc = crc32(crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(payload.data()),
                    static_cast<uInt>(payload.size()));
  return "SQR1" + le32(static_cast<uint32_t>(payload.size())) + le32(static_cast<uint32_t>(crc)) + payload;
}

// A queue directory of the earlier layout, written as the old code did.
class OldQueue {
 public:
  explicit OldQueue(std::string root) : root_(std::move(root)) {
    for (const char* d : {"tmp", "data", "incoming", "active", "deferred", "hold", "corrupt"}) {
      std::filesystem::create_directories(root_ + "/" + d);
    }
  }
  // An entry in state directory `dir` with `content`; returns its record.
  sluice::v1::QueueRecord Add(const std::string& dir, const std::string& id, const std::string& content,
                              const std::function<void(sluice::v1::QueueRecord&)>& edit = nullptr) {
    sluice::v1::QueueRecord r;
    r.set_queue_id(id);
    r.set_sender("alice@example.org");
    auto* rcpt = r.add_recipients();
    rcpt->set_address("bob@example.com");
    rcpt->set_notify("SUCCESS,FAILURE");
    rcpt->set_orcpt("rfc822;bob@example.com");
    rcpt->set_status(sluice::v1::RECIPIENT_STATUS_PENDING);
    auto* done = r.add_recipients();
    done->set_address("carol@example.com");
    done->set_status(sluice::v1::RECIPIENT_STATUS_DELIVERED);
    done->set_last_reply("250 2.0.0 Ok");
    r.set_size_bytes(content.size());
    *r.mutable_arrived_at() = ToProtoTime(absl::FromUnixSeconds(1765000000));
    r.set_session_id("SESS" + id.substr(0, 4));
    r.mutable_original_client()->set_client_address("192.0.2.7");
    r.set_peer_address("127.0.0.1");
    r.set_ret("HDRS");
    r.set_envid("ENV-" + id);
    r.set_body_type("8BITMIME");
    r.set_attempts(dir == "deferred" ? 3 : 0);
    if (dir == "deferred") *r.mutable_next_attempt_at() = ToProtoTime(absl::FromUnixSeconds(1765000600));
    if (dir == "hold") r.set_hold_reason("filter: quarantine");
    if (edit) edit(r);
    WriteFile(root_ + "/data/" + id, content);
    WriteFile(root_ + "/" + dir + "/" + id, OldRecordFile(r));
    return r;
  }
  std::string Path(const std::string& rel) const { return root_ + "/" + rel; }

 private:
  std::string root_;
};

std::unique_ptr<QueueStore> OpenStore(const std::string& dir) {
  QueueStoreOptions o;
  o.queue_dir = dir;
  o.maintenance_interval = absl::ZeroDuration();
  auto store = QueueStore::Open(std::move(o));
  EXPECT_THAT(store, IsOk());
  return store.ok() ? std::move(*store) : nullptr;
}

std::string Id(int n) { return absl::StrCat("0OLDLAYOUT", n + 100000); }

// The record as the queue gives it back, with what the earlier queue kept compared field by field.
void ExpectSameRecord(const sluice::v1::QueueRecord& got, const sluice::v1::QueueRecord& want,
                      sluice::v1::QueueState state) {
  sluice::v1::QueueRecord expected = want;
  expected.set_state(state);
  EXPECT_EQ(got.SerializeAsString(), expected.SerializeAsString())
      << "got:\n" << got.DebugString() << "want:\n" << expected.DebugString();
}

TEST(QueueImportTest, EveryStateComesOverWithItsIdRecordAndContent) {
  TempDir dir;
  const std::string q = dir / "queue";
  OldQueue old(q);
  std::string big(300 * 1024, 'x');  // over the writer's buffer: large/ in the new layout
  for (size_t i = 0; i < big.size(); i += 77) big[i] = '\n';
  struct Case {
    std::string dir;
    sluice::v1::QueueState state;
    std::string content;
  };
  std::vector<Case> cases = {{"incoming", sluice::v1::INCOMING, "Subject: a\r\n\r\nincoming\r\n"},
                             {"active", sluice::v1::ACTIVE, "Subject: b\r\n\r\nactive\r\n"},
                             {"deferred", sluice::v1::DEFERRED, "Subject: c\r\n\r\ndeferred\r\n"},
                             {"hold", sluice::v1::HOLD, "Subject: d\r\n\r\nheld\r\n"},
                             {"incoming", sluice::v1::INCOMING, big}};
  std::vector<sluice::v1::QueueRecord> records;
  for (size_t i = 0; i < cases.size(); ++i) records.push_back(old.Add(cases[i].dir, Id(static_cast<int>(i)), cases[i].content));
  WriteFile(old.Path("tmp/" + Id(9)), "a record being written when the old queue stopped");
  WriteFile(old.Path("data/" + Id(8)), "data whose record was never committed");

  {
    auto store = OpenStore(q);
    ASSERT_NE(store, nullptr);
    EXPECT_TRUE(store->import_report().found);
    EXPECT_EQ(store->import_report().imported, cases.size());
    EXPECT_EQ(store->import_report().to_corrupt, 0u);
    for (size_t i = 0; i < cases.size(); ++i) {
      auto entry = store->Get(Id(static_cast<int>(i)));
      ASSERT_THAT(entry, IsOk()) << i;
      ExpectSameRecord(entry->record(), records[i], cases[i].state);
      EXPECT_EQ(ContentOf(*store, Id(static_cast<int>(i))), cases[i].content) << i;
    }
    EXPECT_EQ(store->List(QueueListFilter()).total_messages, cases.size());
    // Deferred keeps its time, held stays held: nothing is due but the others.
    EXPECT_EQ(store->TakeDue(absl::FromUnixSeconds(1765000000), 100).size(), 3u);
  }
  for (const char* d : {"tmp", "data", "incoming", "active", "deferred", "hold"}) {
    EXPECT_FALSE(Exists(old.Path(d))) << d;
  }
  // A restart reads them from the log: the same entries, once.
  auto again = OpenStore(q);
  ASSERT_NE(again, nullptr);
  EXPECT_FALSE(again->import_report().found);
  EXPECT_EQ(again->List(QueueListFilter()).total_messages, cases.size());
  auto held = again->Get(Id(3));
  ASSERT_THAT(held, IsOk());
  EXPECT_EQ(held->record().state(), sluice::v1::HOLD);
  EXPECT_EQ(held->record().hold_reason(), "filter: quarantine");
  EXPECT_EQ(ContentOf(*again, Id(4)), big);
}

TEST(QueueImportTest, WhatCannotBeQueuedGoesToCorruptSayingWhy) {
  TempDir dir;
  const std::string q = dir / "queue";
  OldQueue old(q);
  old.Add("incoming", Id(0), "good\r\n");
  old.Add("incoming", Id(1), "its record is damaged\r\n");
  std::string damaged = testing::ReadFile(old.Path("incoming/" + Id(1)));
  damaged[damaged.size() - 3] ^= 0x40;
  WriteFile(old.Path("incoming/" + Id(1)), damaged);
  old.Add("deferred", Id(2), "short\r\n", [](sluice::v1::QueueRecord& r) { r.set_size_bytes(999); });
  old.Add("active", Id(3), "lost data\r\n");
  std::filesystem::remove(old.Path("data/" + Id(3)));
  old.Add("hold", Id(4), "names another\r\n", [](sluice::v1::QueueRecord& r) { r.set_queue_id("0SOMEONEELSE0000"); });
  old.Add("incoming", Id(5), "in two places\r\n");
  WriteFile(old.Path("deferred/" + Id(5)), testing::ReadFile(old.Path("incoming/" + Id(5))));
  // Set aside by the earlier recovery: its record in corrupt/, its data in data/.
  old.Add("incoming", Id(6), "old corrupt\r\n");
  std::filesystem::rename(old.Path("incoming/" + Id(6)), old.Path("corrupt/" + Id(6)));

  auto store = OpenStore(q);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->import_report().imported, 2u);  // 0, and 5 from incoming/
  EXPECT_EQ(store->import_report().to_corrupt, 6u);
  EXPECT_EQ(ContentOf(*store, Id(0)), "good\r\n");
  auto why = [&](const std::string& name) {
    auto e = store->Get(name);
    EXPECT_THAT(e, IsOk()) << name;
    if (!e.ok()) return std::string();
    EXPECT_EQ(e->record().state(), sluice::v1::CORRUPT) << name;
    return e->record().last_error();
  };
  EXPECT_NE(why(Id(1)).find("checksum"), std::string::npos) << why(Id(1));
  EXPECT_NE(why(Id(2)).find("record says 999"), std::string::npos) << why(Id(2));
  EXPECT_NE(why(Id(3)).find("data file"), std::string::npos) << why(Id(3));
  EXPECT_NE(why(Id(4)).find("0SOMEONEELSE0000"), std::string::npos) << why(Id(4));
  // The copy in deferred/ goes to corrupt/ beside the one imported from incoming/.
  EXPECT_NE(why(Id(5) + ".1").find("another state directory"), std::string::npos) << why(Id(5) + ".1");
  EXPECT_NE(why(Id(6)).find("set aside by its recovery"), std::string::npos) << why(Id(6));
  EXPECT_EQ(store->Get(Id(5))->record().state(), sluice::v1::INCOMING);
  // The data is kept with what went to corrupt/ (in today's form: a record frame, content inline).
  std::string kept = testing::ReadFile(q + "/corrupt/" + Id(2));
  EXPECT_NE(kept.find("short\r\n"), std::string::npos);
  EXPECT_EQ(kept.substr(0, 4), "SQF1");
  EXPECT_NE(testing::ReadFile(q + "/corrupt/" + Id(6)).find("old corrupt\r\n"), std::string::npos);
  EXPECT_FALSE(Exists(old.Path("data")));
  // Operators delete them as any corrupt entry.
  EXPECT_THAT(store->Delete(Id(1)), IsOk());
  EXPECT_FALSE(Exists(q + "/corrupt/" + Id(1)));
}

// The child imports and is SIGKILLed when the import has committed `kill_after` entries
// (or, with kill_after = -1, when every commit is synced and the old files are about to go).
void ImportAndDie(const std::string& q, int kill_after) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(fds[0]);
    QueueStoreOptions o;
    o.queue_dir = q;
    o.maintenance_interval = absl::ZeroDuration();
    o.import_hook = [&](std::string_view step, uint64_t n) {
      bool now = kill_after < 0 ? step == "removing" : step == "committed" && n == static_cast<uint64_t>(kill_after);
      if (!now) return;
      (void)!::write(fds[1], "x", 1);
      for (;;) ::pause();
    };
    (void)QueueStore::Open(std::move(o));
    (void)!::write(fds[1], "d", 1);  // not killed: the import ended first
    ::_exit(0);
  }
  ::close(fds[1]);
  char c = 0;
  ASSERT_EQ(::read(fds[0], &c, 1), 1);
  ::close(fds[0]);
  if (c == 'x') {
    ASSERT_EQ(::kill(pid, SIGKILL), 0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
}

TEST(QueueImportTest, ASigkillAnywhereInTheImportLosesAndDuplicatesNothing) {
  constexpr int kEntries = 150;  // a few commit batches
  for (int kill_after : {1, 64, 100, 149, -1}) {
    TempDir dir;
    const std::string q = dir / "queue";
    OldQueue old(q);
    const char* dirs[] = {"incoming", "active", "deferred", "hold"};
    for (int i = 0; i < kEntries; ++i) old.Add(dirs[i % 4], Id(i), absl::StrCat("Subject: ", i, "\r\n\r\nbody\r\n"));
    ImportAndDie(q, kill_after);
    if (kill_after >= 0) {
      EXPECT_TRUE(Exists(old.Path("data"))) << "the old files stay until the import is durable";
    }
    auto store = OpenStore(q);
    ASSERT_NE(store, nullptr);
    EXPECT_EQ(store->List(QueueListFilter()).total_messages, static_cast<uint64_t>(kEntries)) << kill_after;
    EXPECT_EQ(store->import_report().imported + store->import_report().already_in_log, static_cast<uint64_t>(kEntries))
        << kill_after;
    EXPECT_GT(store->import_report().already_in_log, 0u) << kill_after;
    EXPECT_EQ(store->import_report().to_corrupt, 0u);
    for (int i = 0; i < kEntries; ++i) {
      auto e = store->Get(Id(i));
      ASSERT_THAT(e, IsOk()) << i;
      EXPECT_EQ(ContentOf(*store, Id(i)), absl::StrCat("Subject: ", i, "\r\n\r\nbody\r\n"));
    }
    EXPECT_FALSE(Exists(old.Path("data")));
    // Exactly once in the log too: one record frame per id as the log is read back.
    store.reset();
    auto reread = OpenStore(q);
    EXPECT_EQ(reread->List(QueueListFilter()).total_messages, static_cast<uint64_t>(kEntries));
  }
}

TEST(QueueImportTest, AQueueOfTodaysLayoutIsNotTouched) {
  TempDir dir;
  auto store = OpenStore(dir / "queue");
  ASSERT_NE(store, nullptr);
  EXPECT_FALSE(store->import_report().found);
  EXPECT_EQ(ListDir(dir / "queue"), (std::vector<std::string>{"corrupt", "large", "segments"}));
}

}  // namespace
}  // namespace sluice::reinject
