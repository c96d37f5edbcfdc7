// tests/services/reinject/delivery/maildir_agent_test.cc -- local Maildir delivery: the
// message byte for byte in new/ behind Return-Path:/Delivered-To:, nothing left in tmp/,
// path-safe mailbox names, concurrent deliveries synced in shared batches, mailboxes made
// once and remembered (made again when removed), failures always transient; and the
// --deliver spec.
#include "services/reinject/delivery/maildir_agent.h"

#include <fcntl.h>

#include <set>

#include <gtest/gtest.h>

#include "asio/co_spawn.hpp"
#include "asio/thread_pool.hpp"
#include "lib/status/status_matchers.h"
#include "services/reinject/delivery/agent_factory.h"
#include "tests/services/reinject/testing/queue_test_support.h"

namespace sluice::reinject {
namespace {

using ::sluice::reinject::testing::Envelope;
using ::sluice::reinject::testing::Exists;
using ::sluice::reinject::testing::kMessage;
using ::sluice::reinject::testing::ListDir;
using ::sluice::reinject::testing::ReadFile;
using ::sluice::reinject::testing::RunAwaitable;
using ::sluice::reinject::testing::TempDir;
using ::sluice::reinject::testing::WriteFile;
using ::sluice::testing::IsOk;
using ::sluice::testing::StatusIs;

class MaildirAgentTest : public ::testing::Test {
 protected:
  MaildirAgentTest() : agent_(MaildirOptions{dir_ / "mail", "mx.test"}, pool_.get_executor()) {}
  ~MaildirAgentTest() override { pool_.join(); }

  std::vector<RecipientResult> Deliver(const sluice::v1::QueueRecord& record, const std::string& content,
                                       std::vector<int> indexes) {
    WriteFile(dir_ / "message", content);
    MessageContent c = testing::ContentFile(dir_ / "message");
    return RunAwaitable(io_, agent_.Deliver(record, c, indexes));
  }
  std::string Mailbox(const std::string& name) { return dir_ / ("mail/" + name); }

  TempDir dir_;
  asio::io_context io_;
  asio::thread_pool pool_{2};
  MaildirAgent agent_;
};

// An entry as the queue gives it: an id and an arrival time.
sluice::v1::QueueRecord Entry(const std::string& id, const std::string& sender, const std::vector<std::string>& rcpts) {
  auto record = Envelope(sender, rcpts);
  record.set_queue_id(id);
  record.mutable_arrived_at()->set_seconds(1765000000);
  return record;
}

TEST_F(MaildirAgentTest, DeliversByteExactIntoNewWithReturnPathAndDeliveredTo) {
  auto record = Entry("0QUEUEID0000AAAA", "alice@example.org", {"Bob.Smith@Example.COM"});
  auto results = Deliver(record, kMessage, {0});
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].index, 0);
  EXPECT_EQ(results[0].outcome, DeliveryOutcome::kDelivered);
  EXPECT_EQ(results[0].reply.substr(0, 3), "250");
  const std::string box = Mailbox("bob.smith@example.com");
  auto files = ListDir(box + "/new");
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(ReadFile(box + "/new/" + files[0]),
            std::string("Return-Path: <alice@example.org>\r\nDelivered-To: Bob.Smith@Example.COM\r\n") + kMessage);
  EXPECT_TRUE(ListDir(box + "/tmp").empty());
  EXPECT_TRUE(Exists(box + "/cur"));
  // <arrival>.Q<queue id>R<hash of the address>.<host>: nothing Dovecot would misread.
  EXPECT_EQ(files[0].rfind("1765000000.Q0QUEUEID0000AAAAR", 0), 0u) << files[0];
  EXPECT_EQ(files[0].substr(files[0].size() - 8), ".mx.test");
  EXPECT_EQ(files[0], agent_.FileName(record, 0));
  EXPECT_EQ(files[0].find(':'), std::string::npos);
  EXPECT_EQ(files[0].find(','), std::string::npos);
}

TEST_F(MaildirAgentTest, AddedLinesEndLikeTheMessageLines) {
  auto record = Envelope("", {"bob@example.com"});
  Deliver(record, "Subject: lf\n\nbody\n", {0});
  auto files = ListDir(Mailbox("bob@example.com") + "/new");
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(ReadFile(Mailbox("bob@example.com") + "/new/" + files[0]),
            "Return-Path: <>\nDelivered-To: bob@example.com\nSubject: lf\n\nbody\n");
}

TEST_F(MaildirAgentTest, EachRecipientGetsItsOwnMailbox) {
  auto record = Envelope("a@x.example", {"one@example.com", "two@example.com", "three@example.com"});
  auto results = Deliver(record, kMessage, {0, 2});
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].index, 0);
  EXPECT_EQ(results[1].index, 2);
  EXPECT_EQ(ListDir(Mailbox("one@example.com") + "/new").size(), 1u);
  EXPECT_EQ(ListDir(Mailbox("three@example.com") + "/new").size(), 1u);
  EXPECT_FALSE(Exists(Mailbox("two@example.com")));
}

TEST_F(MaildirAgentTest, DistinctEntriesGetDistinctFiles) {
  for (int i = 0; i < 50; ++i) {
    auto record = Entry("0QUEUEID0000" + std::to_string(1000 + i), "a@x.example", {"bob@example.com"});
    Deliver(record, kMessage, {0});
  }
  EXPECT_EQ(ListDir(Mailbox("bob@example.com") + "/new").size(), 50u);
}

TEST_F(MaildirAgentTest, TwoSpellingsOfAnAddressAreTwoDeliveriesToOneMailbox) {
  auto record = Entry("0QUEUEID0000BBBB", "a@x.example", {"bob@example.com", "Bob@Example.com"});
  auto results = Deliver(record, kMessage, {0, 1});
  ASSERT_EQ(results.size(), 2u);
  EXPECT_NE(agent_.FileName(record, 0), agent_.FileName(record, 1));
  EXPECT_EQ(ListDir(Mailbox("bob@example.com") + "/new").size(), 2u);
}

// Issue 11: a delivery repeated after a crash (the file written, the queue entry's end not
// on disk) finds its file and writes no second one -- in new/, or in cur/ under whatever
// flags a mail client gave it, or written by another host.
TEST_F(MaildirAgentTest, ARepeatedDeliveryFindsItsFileInNewAndWritesNoOther) {
  auto record = Entry("0QUEUEID0000CCCC", "a@x.example", {"bob@example.com"});
  ASSERT_EQ(Deliver(record, kMessage, {0})[0].outcome, DeliveryOutcome::kDelivered);
  MaildirAgent after_restart(MaildirOptions{dir_ / "mail", "mx.test"}, pool_.get_executor());
  WriteFile(dir_ / "message", kMessage);
  MessageContent c = testing::ContentFile(dir_ / "message");
  auto again = RunAwaitable(io_, after_restart.Deliver(record, c, std::vector<int>{0}, EarlierAttempt::kPossible));
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].outcome, DeliveryOutcome::kDelivered);
  EXPECT_EQ(again[0].reply, "250 2.0.0 already delivered to maildir");
  EXPECT_EQ(after_restart.already_delivered(), 1u);
  EXPECT_EQ(ListDir(Mailbox("bob@example.com") + "/new").size(), 1u);
  EXPECT_TRUE(ListDir(Mailbox("bob@example.com") + "/tmp").empty());
}

TEST_F(MaildirAgentTest, ARepeatedDeliveryFindsItsFileInCurWhateverTheFlags) {
  const std::string box = Mailbox("bob@example.com");
  int n = 0;
  for (const char* info : {":2,", ":2,S", ":2,FRS", ":2,Sab"}) {
    auto record = Entry("0QUEUEID0000D00" + std::to_string(n++), "a@x.example", {"bob@example.com"});
    Deliver(record, kMessage, {0});
    std::string name = agent_.FileName(record, 0);
    // What a mail client (Dovecot) does when the message is seen: new/ -> cur/ with info.
    ASSERT_EQ(::rename((box + "/new/" + name).c_str(), (box + "/cur/" + name + info).c_str()), 0);
    MaildirAgent after_restart(MaildirOptions{dir_ / "mail", "mx.test"}, pool_.get_executor());
    MessageContent c = testing::ContentFile(dir_ / "message");
    auto again = RunAwaitable(io_, after_restart.Deliver(record, c, std::vector<int>{0}, EarlierAttempt::kPossible));
    EXPECT_EQ(again[0].reply, "250 2.0.0 already delivered to maildir") << info;
  }
  EXPECT_TRUE(ListDir(box + "/new").empty());
  EXPECT_EQ(ListDir(box + "/cur").size(), 4u);
}

TEST_F(MaildirAgentTest, ARepeatedDeliveryFindsACopyAnotherHostWrote) {
  auto record = Entry("0QUEUEID0000EEEE", "a@x.example", {"bob@example.com"});
  Deliver(record, kMessage, {0});
  MaildirAgent other_host(MaildirOptions{dir_ / "mail", "mx2.test"}, pool_.get_executor());
  MessageContent c = testing::ContentFile(dir_ / "message");
  auto again = RunAwaitable(io_, other_host.Deliver(record, c, std::vector<int>{0}, EarlierAttempt::kPossible));
  EXPECT_EQ(again[0].reply, "250 2.0.0 already delivered to maildir");
  EXPECT_EQ(ListDir(Mailbox("bob@example.com") + "/new").size(), 1u);
}

TEST_F(MaildirAgentTest, ATmpFileLeftByADeadAttemptIsReplacedNotKept) {
  auto record = Entry("0QUEUEID0000FFFF", "a@x.example", {"bob@example.com"});
  const std::string box = Mailbox("bob@example.com");
  Deliver(Entry("0QUEUEID0000FFF0", "a@x.example", {"bob@example.com"}), kMessage, {0});  // makes the mailbox
  WriteFile(box + "/tmp/" + agent_.FileName(record, 0), "half a mess");
  MessageContent c = testing::ContentFile(dir_ / "message");
  auto results = RunAwaitable(io_, agent_.Deliver(record, c, std::vector<int>{0}, EarlierAttempt::kPossible));
  EXPECT_EQ(results[0].reply, "250 2.0.0 delivered to maildir");
  EXPECT_TRUE(ListDir(box + "/tmp").empty());
  EXPECT_EQ(ReadFile(box + "/new/" + agent_.FileName(record, 0)),
            std::string("Return-Path: <a@x.example>\r\nDelivered-To: bob@example.com\r\n") + kMessage);
}

TEST_F(MaildirAgentTest, OnlyAPossiblyRepeatedDeliveryLooksForAnEarlierCopy) {
  auto record = Entry("0QUEUEID0000GGGG", "a@x.example", {"bob@example.com"});
  Deliver(record, kMessage, {0});
  const std::string box = Mailbox("bob@example.com");
  std::string name = agent_.FileName(record, 0);
  ASSERT_EQ(::rename((box + "/new/" + name).c_str(), (box + "/cur/" + name + ":2,S").c_str()), 0);
  // A fresh entry (kNone) never was delivered: no scan, a file (the test forged the earlier one).
  auto results = Deliver(record, kMessage, {0});
  EXPECT_EQ(results[0].reply, "250 2.0.0 delivered to maildir");
  EXPECT_EQ(agent_.already_delivered(), 0u);
}

TEST(MaildirFileNameTest, KeyOfFileNameReadsOursAndIgnoresOthers) {
  EXPECT_EQ(MaildirAgent::KeyOfFileName("1765000000.Q0ABCR00ff.mx.test"), "Q0ABCR00ff");
  EXPECT_EQ(MaildirAgent::KeyOfFileName("1765000000.Q0ABCR00ff.mx.test:2,S"), "Q0ABCR00ff");
  EXPECT_EQ(MaildirAgent::KeyOfFileName("1765000000.M12P3Q4.host:2,"), "");
  EXPECT_EQ(MaildirAgent::KeyOfFileName("1765000000.Q0ABC.host"), "");
  EXPECT_EQ(MaildirAgent::KeyOfFileName("garbage"), "");
  EXPECT_EQ(MaildirAgent::KeyOfFileName("."), "");
}

TEST_F(MaildirAgentTest, AKnownMailboxIsNotMadeAgainForEachMessage) {
  Deliver(Entry("0QUEUEID0000KKK1", "a@x.example", {"bob@example.com"}), kMessage, {0});
  const std::string box = Mailbox("bob@example.com");
  ASSERT_EQ(::rmdir((box + "/cur").c_str()), 0);
  auto results = Deliver(Entry("0QUEUEID0000KKK2", "a@x.example", {"bob@example.com"}), kMessage, {0});
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].outcome, DeliveryOutcome::kDelivered);
  EXPECT_EQ(ListDir(box + "/new").size(), 2u);
  EXPECT_FALSE(Exists(box + "/cur"));  // remembered: no mkdir on the second delivery
}

TEST_F(MaildirAgentTest, AMailboxRemovedBehindOurBackIsMadeAgain) {
  auto record = Envelope("a@x.example", {"bob@example.com"});
  Deliver(record, kMessage, {0});
  const std::string box = Mailbox("bob@example.com");
  std::filesystem::remove_all(box);
  auto results = Deliver(record, kMessage, {0});
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].outcome, DeliveryOutcome::kDelivered) << results[0].reply;
  EXPECT_EQ(ListDir(box + "/new").size(), 1u);
  EXPECT_TRUE(Exists(box + "/cur"));
}

TEST_F(MaildirAgentTest, ConcurrentDeliveriesAreMadeDurableInSharedBatches) {
  std::vector<std::string> rcpts;
  for (int i = 0; i < 40; ++i) rcpts.push_back("user" + std::to_string(i) + "@example.com");
  auto record = Envelope("a@x.example", rcpts);
  WriteFile(dir_ / "message", kMessage);
  MessageContent c = testing::ContentFile(dir_ / "message");
  int done = 0;
  std::vector<std::vector<int>> indexes;  // alive while the deliveries run (taken by reference)
  for (int i = 0; i < 40; ++i) indexes.push_back({i});
  for (int i = 0; i < 40; ++i) {
    asio::co_spawn(io_, agent_.Deliver(record, c, indexes[static_cast<size_t>(i)]),
                   [&done](std::exception_ptr, std::vector<RecipientResult> r) {
                     if (r.size() == 1 && r[0].outcome == DeliveryOutcome::kDelivered) ++done;
                   });
  }
  ASSERT_TRUE(testing::RunUntil(io_, [&] { return done == 40; })) << done;
  for (const auto& rcpt : rcpts) {
    EXPECT_EQ(ListDir(Mailbox(rcpt) + "/new").size(), 1u) << rcpt;
    EXPECT_TRUE(ListDir(Mailbox(rcpt) + "/tmp").empty()) << rcpt;
  }
  EXPECT_EQ(agent_.batch().files(), 40u);
  // The point: fewer rounds of fsyncs than deliveries.
  EXPECT_LT(agent_.batch().batches(), 40u);
}

TEST_F(MaildirAgentTest, FailureIsTransientNeverPermanent) {
  WriteFile(dir_ / "mail", "a file where the maildir root should be");
  auto record = Envelope("a@x.example", {"bob@example.com"});
  auto results = Deliver(record, kMessage, {0});
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].outcome, DeliveryOutcome::kTransient);
  EXPECT_EQ(results[0].reply.substr(0, 9), "451 4.3.0") << results[0].reply;
}

TEST_F(MaildirAgentTest, UnreadableQueueContentIsTransient) {
  auto record = Envelope("a@x.example", {"bob@example.com"});
  WriteFile(dir_ / "short", "ten bytes.");
  MessageContent c = testing::ContentFile(dir_ / "short");
  MessageContent longer(std::make_shared<SharedFd>(::open((dir_ / "short").c_str(), O_RDONLY)), 0, 1000);
  auto results = RunAwaitable(io_, agent_.Deliver(record, longer, std::vector<int>{0}));
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].outcome, DeliveryOutcome::kTransient);
  EXPECT_TRUE(ListDir(Mailbox("bob@example.com") + "/new").empty());
}

TEST(MailboxNameTest, LowerCasesAndKeepsOrdinaryAddresses) {
  EXPECT_EQ(MaildirAgent::MailboxName("Bob+Tag@Example.COM"), "bob+tag@example.com");
}

TEST(MailboxNameTest, NeverAPathOrAHiddenName) {
  for (const char* hostile : {"../../etc/passwd@x", "a/b@x", "..", ".", ".hidden@x", "a\\b@x", "\"a b\"@x"}) {
    std::string name = MaildirAgent::MailboxName(hostile);
    EXPECT_EQ(name.find('/'), std::string::npos) << hostile;
    EXPECT_NE(name[0], '.') << hostile;
    EXPECT_NE(name, "..");
  }
}

TEST(MailboxNameTest, DistinctAddressesGetDistinctNames) {
  std::set<std::string> names;
  for (const char* a : {"a/b@x", "a_b@x", "a%2Fb@x", "a b@x", "a.b@x"}) names.insert(MaildirAgent::MailboxName(a));
  EXPECT_EQ(names.size(), 5u);
}

TEST(MailboxNameTest, LongAddressesAreBounded) {
  std::string a(240, '/');
  a += "@x";
  EXPECT_LE(MaildirAgent::MailboxName(a).size(), 200u);
  std::string b = a;
  b[0] = 'q';
  EXPECT_NE(MaildirAgent::MailboxName(a), MaildirAgent::MailboxName(b));
}

TEST(AgentFactoryTest, MaildirSpecMakesAMaildirAgent) {
  asio::thread_pool pool(1);
  AgentContext context;
  context.hostname = "mx.test";
  context.blocking = pool.get_executor();
  auto agent = MakeDeliveryAgent("maildir:var/mail", context);
  ASSERT_THAT(agent, IsOk());
  EXPECT_EQ((*agent)->name(), "maildir");
  pool.join();
}

TEST(AgentFactoryTest, BadSpecsAreRefusedNamingThem) {
  asio::thread_pool pool(1);
  AgentContext context;
  context.hostname = "mx.test";
  context.blocking = pool.get_executor();
  EXPECT_THAT(MakeDeliveryAgent("maildir:", context), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(MakeDeliveryAgent("pigeon:coop", context), StatusIs(absl::StatusCode::kInvalidArgument, "pigeon"));
  EXPECT_THAT(MakeDeliveryAgent("smtp:nohost", context), StatusIs(absl::StatusCode::kInvalidArgument, "smtp:nohost"));
  EXPECT_THAT(MakeDeliveryAgent("lmtp:127.0.0.1:0", context), StatusIs(absl::StatusCode::kInvalidArgument));
  context.tls.set_ca_file("/nonexistent/ca.pem");
  EXPECT_THAT(MakeDeliveryAgent("smtp:127.0.0.1:25", context),
              StatusIs(absl::StatusCode::kInvalidArgument, "delivery_tls"));
}

TEST(AgentFactoryTest, RelaySpecsMakeRelayAgentsNamedByNextHop) {
  asio::thread_pool pool(1);
  AgentContext context;
  context.hostname = "mx.test";
  context.blocking = pool.get_executor();
  auto smtp = MakeDeliveryAgent("smtp:127.0.0.1:2525", context);
  ASSERT_THAT(smtp, IsOk());
  EXPECT_EQ((*smtp)->name(), "smtp:127.0.0.1:2525");
  auto lmtp = MakeDeliveryAgent("lmtp:[::1]:24", context);
  ASSERT_THAT(lmtp, IsOk());
  EXPECT_EQ((*lmtp)->name(), "lmtp:[::1]:24");
  pool.join();
}

}  // namespace
}  // namespace sluice::reinject
