// tests/services/reinject/delivery/relay_agent_test.cc -- the SMTP/LMTP relay agent against
// real next hops: Postfix's smtp-sink (capturing, or answering 4xx/5xx/421/hang-up on chosen
// commands) and Dovecot's LMTP server (per-recipient replies after the content, STARTTLS,
// Maildir delivery); plus the MAIL/RCPT parameters and refusals as pure functions.
#include "services/reinject/delivery/relay_agent.h"

#include <cstdlib>

#include <gmock/gmock.h>
#include <fcntl.h>

#include <gtest/gtest.h>

#include "absl/strings/str_replace.h"
#include "asio/co_spawn.hpp"
#include "asio/experimental/as_tuple.hpp"
#include "asio/experimental/awaitable_operators.hpp"
#include "asio/steady_timer.hpp"
#include "asio/thread_pool.hpp"
#include "asio/use_awaitable.hpp"
#include "lib/status/status_matchers.h"
#include "services/reinject/delivery/relay_transaction.h"
#include "tests/services/reinject/testing/peer_process.h"
#include "tests/services/reinject/testing/queue_test_support.h"

namespace sluice::reinject {
namespace {

using ::sluice::reinject::testing::DovecotLmtp;
using ::sluice::reinject::testing::Envelope;
using ::sluice::reinject::testing::FreePort;
using ::sluice::reinject::testing::kMessage;
using ::sluice::reinject::testing::RunAwaitable;
using ::sluice::reinject::testing::RunUntil;
using ::sluice::reinject::testing::SmtpSink;
using ::sluice::reinject::testing::TempDir;
using ::sluice::reinject::testing::WriteFile;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

std::string Lf(std::string s) { return absl::StrReplaceAll(s, {{"\r\n", "\n"}}); }

// The message part of an smtp-sink capture: after its own headers and Received: (3 lines).
std::string SinkMessage(const std::string& dump) {
  size_t pos = dump.find("\nReceived: from ");
  if (pos == std::string::npos) return "";
  for (int lines = 0; lines < 3 && pos != std::string::npos; ++lines) pos = dump.find('\n', pos + 1);
  return pos == std::string::npos ? "" : dump.substr(pos + 1);
}

class RelayAgentTest : public ::testing::Test {
 protected:
  ~RelayAgentTest() override {
    agent_.reset();
    pool_.join();
  }

  RelayAgent& MakeAgent(const std::string& target, bool lmtp = false, sluice::v1::Limits limits = {},
                        absl::Duration idle = absl::Seconds(30), sluice::v1::TlsConfig tls = {}) {
    RelayOptions o;
    o.lmtp = lmtp;
    o.next_hop = *net::ParseHostPort(target);
    o.helo_name = "mx.test";
    if (!limits.has_connect_timeout_seconds()) limits.set_connect_timeout_seconds(5);
    if (!limits.has_delivery_timeout_seconds()) limits.set_delivery_timeout_seconds(20);
    o.limits = FixedLimits(limits);
    o.tls = tls;
    o.blocking = pool_.get_executor();
    o.idle_timeout = idle;
    auto agent = RelayAgent::Create(std::move(o));
    EXPECT_THAT(agent, ::sluice::testing::IsOk());
    agent_ = *std::move(agent);
    return *agent_;
  }

  std::vector<RecipientResult> Deliver(const sluice::v1::QueueRecord& record, const std::string& content,
                                       std::vector<int> indexes) {
    WriteFile(dir_ / "message", content);
    content_ = testing::ContentFile(dir_ / "message");
    record_ = record;
    record_.set_size_bytes(content.size());
    indexes_ = std::move(indexes);
    return RunAwaitable(io_, agent_->Deliver(record_, content_, indexes_));
  }

  TempDir dir_;
  asio::io_context io_;
  asio::thread_pool pool_{2};
  std::unique_ptr<RelayAgent> agent_;
  sluice::v1::QueueRecord record_;
  MessageContent content_;
  std::vector<int> indexes_;
};

#define REQUIRE_SINK(sink)                                                  \
  if (!SmtpSink::Available()) GTEST_SKIP() << "no /usr/sbin/smtp-sink";     \
  ASSERT_TRUE((sink).started()) << "smtp-sink did not start"

#define REQUIRE_DOVECOT(dv)                                                 \
  if (!DovecotLmtp::Available()) GTEST_SKIP() << "no dovecot-lmtpd";        \
  ASSERT_TRUE((dv).started()) << "dovecot did not start:\n" << (dv).log()

// ---- MAIL/RCPT parameters, refusals ----

TEST(RelayCommandsTest, OnlyAnnouncedParametersAreSent) {
  sluice::v1::QueueRecord r = Envelope("a@example.org", {"c@example.com"});
  r.set_size_bytes(1234);
  r.set_body_type("8BITMIME");
  r.set_smtputf8(true);
  r.set_ret("HDRS");
  r.set_envid("id+1=x");
  r.mutable_recipients(0)->set_notify("SUCCESS,FAILURE");
  r.mutable_recipients(0)->set_orcpt("rfc822;C=1@example.com");
  smtp::Capabilities none;
  EXPECT_EQ(RelayMailCommand(r, none), "MAIL FROM:<a@example.org>");
  EXPECT_EQ(RelayRcptCommand(r.recipients(0), none), "RCPT TO:<c@example.com>");
  smtp::Capabilities all;
  all.size = all.eightbitmime = all.smtputf8 = all.dsn = true;
  EXPECT_EQ(RelayMailCommand(r, all),
            "MAIL FROM:<a@example.org> SIZE=1234 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=id+2B1+3Dx");
  EXPECT_EQ(RelayRcptCommand(r.recipients(0), all),
            "RCPT TO:<c@example.com> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;C+3D1@example.com");
}

TEST(RelayCommandsTest, NullSenderAndNoDsnValues) {
  sluice::v1::QueueRecord r = Envelope("", {"c@example.com"});
  smtp::Capabilities all;
  all.dsn = all.eightbitmime = true;
  EXPECT_EQ(RelayMailCommand(r, all), "MAIL FROM:<>");
  EXPECT_EQ(RelayRcptCommand(r.recipients(0), all), "RCPT TO:<c@example.com>");
}

TEST(RelayCommandsTest, RefusesWhatTheNextHopCannotTake) {
  sluice::v1::QueueRecord r = Envelope("a@example.org", {"ascii@example.com", "j\xC3\xBCrgen@example.com"});
  r.set_size_bytes(5000);
  smtp::Capabilities caps;
  caps.size = true;
  caps.size_limit = 4999;
  EXPECT_THAT(RelayRefusal(r, {0}, caps, "mx"), StartsWith("552 5.3.4 message size 5000 exceeds size limit 4999"));
  caps.size_limit = 5000;
  EXPECT_EQ(RelayRefusal(r, {0, 1}, caps, "mx"), "");  // SMTPUTF8 not asked for
  r.set_smtputf8(true);
  EXPECT_THAT(RelayRefusal(r, {0, 1}, caps, "mx"), StartsWith("550 5.6.7 SMTPUTF8 is required"));
  EXPECT_EQ(RelayRefusal(r, {0}, caps, "mx"), "");  // an ASCII envelope goes anyway
  caps.smtputf8 = true;
  EXPECT_EQ(RelayRefusal(r, {0, 1}, caps, "mx"), "");
}

// ---- smtp-sink ----

TEST_F(RelayAgentTest, RelaysEveryRecipientInOneTransactionWithDsnParameters) {
  SmtpSink sink(dir_, {});
  REQUIRE_SINK(sink);
  MakeAgent(sink.target());
  auto record = Envelope("alice@example.org", {"bob@example.com", "carol@example.com"});
  record.set_body_type("8BITMIME");
  record.set_ret("HDRS");
  record.set_envid("env+1");
  record.mutable_recipients(0)->set_notify("FAILURE,DELAY");
  record.mutable_recipients(0)->set_orcpt("rfc822;Bob@Example.COM");
  const std::string content = std::string(kMessage) + ".a line with a leading dot\r\n..two\r\n";
  auto results = Deliver(record, content, {0, 1});
  ASSERT_EQ(results.size(), 2u);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(results[i].index, i);
    EXPECT_EQ(results[i].outcome, DeliveryOutcome::kDelivered) << results[i].reply;
    EXPECT_THAT(results[i].reply, StartsWith("250 2.0.0"));
    EXPECT_EQ(results[i].diagnostic_type, "smtp");
    EXPECT_EQ(results[i].remote_mta, "127.0.0.1");
    EXPECT_EQ(results[i].success, SuccessNotice::kPassedOn);  // the sink announces DSN
  }
  auto dumps = sink.Dumps();
  ASSERT_EQ(dumps.size(), 1u);
  EXPECT_THAT(dumps[0], HasSubstr("X-Helo-Args: mx.test\n"));
  EXPECT_THAT(dumps[0], HasSubstr("X-Mail-Args: <alice@example.org> BODY=8BITMIME RET=HDRS ENVID=env+2B1\n"));
  EXPECT_THAT(dumps[0], HasSubstr("X-Rcpt-Args: <bob@example.com> NOTIFY=FAILURE,DELAY ORCPT=rfc822;Bob@Example.COM\n"));
  EXPECT_THAT(dumps[0], HasSubstr("X-Rcpt-Args: <carol@example.com>\n"));
  // smtp-sink stores lines with LF and adds one empty line; the dots came back unstuffed.
  EXPECT_EQ(SinkMessage(dumps[0]), Lf(content) + "\n");
}

// ---- a next hop without DSN and 8BITMIME (smtp-sink -N -8) ----

bool Has8Bit(const std::string& s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) >= 0x80) return true;
  }
  return false;
}

TEST_F(RelayAgentTest, NextHopWithout8BitMimeGetsQuotedPrintableAndSuccessIsOursToReport) {
  SmtpSink sink(dir_, {"-N", "-8"});
  REQUIRE_SINK(sink);
  MakeAgent(sink.target());
  auto record = Envelope("alice@example.org", {"bob@example.com"});
  record.set_body_type("8BITMIME");
  record.mutable_recipients(0)->set_notify("SUCCESS,FAILURE");
  const std::string content =
      "From: alice@example.org\r\nTo: bob@example.com\r\nSubject: 8-bit\r\nMIME-Version: 1.0\r\n"
      "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
      "Gr\xC3\xBC\xC3\x9F"
      "e = 100 %\r\n.dot\r\n";
  auto results = Deliver(record, content, {0});
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].outcome, DeliveryOutcome::kDelivered) << results[0].reply;
  EXPECT_EQ(results[0].success, SuccessNotice::kRelayed);  // NOTIFY could not go on
  auto dumps = sink.Dumps();
  ASSERT_EQ(dumps.size(), 1u);
  EXPECT_THAT(dumps[0], HasSubstr("X-Rcpt-Args: <bob@example.com>\n"));  // no NOTIFY without DSN
  EXPECT_THAT(dumps[0], Not(HasSubstr("BODY=")));
  EXPECT_FALSE(Has8Bit(dumps[0])) << dumps[0];
  std::string message = SinkMessage(dumps[0]);
  EXPECT_THAT(message, HasSubstr("Content-Transfer-Encoding: quoted-printable\n\nGr=C3=BC=C3=9Fe =3D 100 %\n.dot\n"))
      << message;
}

TEST_F(RelayAgentTest, MessageThatCannotBe7BitIsRefusedWith563BeforeMail) {
  SmtpSink sink(dir_, {"-8"});
  REQUIRE_SINK(sink);
  RelayAgent& agent = MakeAgent(sink.target());
  auto record = Envelope("alice@example.org", {"bob@example.com", "carol@example.com"});
  record.set_body_type("8BITMIME");
  const std::string content =
      "From: alice@example.org\r\nSubject: Gr\xC3\xBC\xC3\x9F"
      "e\r\n\r\nGr\xC3\xBC\xC3\x9F"
      "e\r\n";
  auto results = Deliver(record, content, {0, 1});
  ASSERT_EQ(results.size(), 2u);
  for (const auto& r : results) {
    EXPECT_EQ(r.outcome, DeliveryOutcome::kPermanent) << r.reply;
    EXPECT_THAT(r.reply,
                StartsWith("554 5.6.3 Conversion required but not supported: 8-bit data in the message header"));
    EXPECT_THAT(r.reply, HasSubstr("does not offer 8BITMIME"));
  }
  EXPECT_TRUE(sink.Dumps().empty());  // no MAIL was sent
  // With SMTPUTF8 the UTF-8 header needs that extension instead (RFC 6531 §3.2).
  record.set_smtputf8(true);
  results = Deliver(record, content, {0});
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].outcome, DeliveryOutcome::kPermanent);
  EXPECT_THAT(results[0].reply, StartsWith("550 5.6.7 SMTPUTF8 is required"));
  EXPECT_TRUE(sink.Dumps().empty());
  EXPECT_EQ(agent.connections_idle(), 1u);  // the connection stays usable
}

TEST_F(RelayAgentTest, EightBitMessageGoesUnchangedToANextHopWith8BitMime) {
  SmtpSink sink(dir_, {"-N"});
  REQUIRE_SINK(sink);
  MakeAgent(sink.target());
  auto record = Envelope("alice@example.org", {"bob@example.com"});
  record.set_body_type("8BITMIME");
  record.mutable_recipients(0)->set_notify("SUCCESS");
  const std::string content =
      "From: alice@example.org\r\nSubject: x\r\n\r\nGr\xC3\xBC\xC3\x9F"
      "e\r\n";
  auto results = Deliver(record, content, {0});
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].outcome, DeliveryOutcome::kDelivered) << results[0].reply;
  EXPECT_EQ(results[0].success, SuccessNotice::kRelayed);
  auto dumps = sink.Dumps();
  ASSERT_EQ(dumps.size(), 1u);
  EXPECT_THAT(dumps[0], HasSubstr("BODY=8BITMIME"));
  EXPECT_EQ(SinkMessage(dumps[0]), Lf(content) + "\n");
}

TEST_F(RelayAgentTest, LongRecipientListsArePipelinedInGroups) {
  SmtpSink sink(dir_, {});
  REQUIRE_SINK(sink);
  MakeAgent(sink.target());
  std::vector<std::string> rcpts;
  std::vector<int> indexes;
  for (int i = 0; i < 250; ++i) {
    rcpts.push_back("r" + std::to_string(i) + "@example.com");
    indexes.push_back(i);
  }
  auto results = Deliver(Envelope("alice@example.org", rcpts), kMessage, indexes);
  ASSERT_EQ(results.size(), 250u);
  for (int i = 0; i < 250; ++i) {
    EXPECT_EQ(results[i].index, i);
    EXPECT_EQ(results[i].outcome, DeliveryOutcome::kDelivered) << results[i].reply;
  }
  auto dumps = sink.Dumps();
  ASSERT_EQ(dumps.size(), 1u);
  EXPECT_THAT(dumps[0], HasSubstr("X-Rcpt-Args: <r0@example.com>\n"));
  EXPECT_THAT(dumps[0], HasSubstr("X-Rcpt-Args: <r249@example.com>\n"));
}

TEST_F(RelayAgentTest, GreetingThatNeverComesIsTransientAfterTheConnectTimeout) {
  // A socket that listens but never accepts: the kernel completes the TCP handshake, and
  // no greeting ever comes.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(fd, 4), 0);
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len), 0);
  sluice::v1::Limits limits;
  limits.set_connect_timeout_seconds(1);
  MakeAgent("127.0.0.1:" + std::to_string(ntohs(a.sin_port)), false, limits);
  auto results = Deliver(Envelope("alice@example.org", {"bob@example.com"}), kMessage, {0});
  ::close(fd);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].outcome, DeliveryOutcome::kTransient);
  EXPECT_THAT(results[0].reply, AllOf(StartsWith("451 4.4.1"), HasSubstr("timeout")));
}

TEST_F(RelayAgentTest, ConnectionIsReusedWithRsetUpToTheReuseLimit) {
  SmtpSink sink(dir_, {});
  REQUIRE_SINK(sink);
  sluice::v1::Limits limits;
  limits.set_delivery_connection_reuse_limit(2);
  RelayAgent& agent = MakeAgent(sink.target(), false, limits);
  auto record = Envelope("alice@example.org", {"bob@example.com"});
  for (int i = 0; i < 5; ++i) {
    auto results = Deliver(record, kMessage, {0});
    ASSERT_EQ(results.size(), 1u);
    EXPECT_EQ(results[0].outcome, DeliveryOutcome::kDelivered) << results[0].reply;
  }
  EXPECT_EQ(sink.Dumps().size(), 5u);
  EXPECT_EQ(agent.connections_opened(), 3u);  // 2 + 2 + 1 messages
  EXPECT_EQ(agent.connections_idle(), 1u);
}

TEST_F(RelayAgentTest, IdleConnectionIsClosedAfterTheIdleTimeout) {
  SmtpSink sink(dir_, {});
  REQUIRE_SINK(sink);
  RelayAgent& agent = MakeAgent(sink.target(), false, {}, absl::Milliseconds(100));
  auto record = Envelope("alice@example.org", {"bob@example.com"});
  EXPECT_EQ(Deliver(record, kMessage, {0})[0].outcome, DeliveryOutcome::kDelivered);
  EXPECT_EQ(agent.connections_idle(), 1u);
  ASSERT_TRUE(RunUntil(io_, [&] { return agent.connections_idle() == 0; }));
  EXPECT_EQ(Deliver(record, kMessage, {0})[0].outcome, DeliveryOutcome::kDelivered);
  EXPECT_EQ(agent.connections_opened(), 2u);
}

TEST_F(RelayAgentTest, ConnectionTheNextHopDroppedIsReplaced) {
  uint16_t port = FreePort();
  auto first = std::make_unique<SmtpSink>(dir_, std::vector<std::string>{}, port);
  REQUIRE_SINK(*first);
  RelayAgent& agent = MakeAgent(first->target());
  auto record = Envelope("alice@example.org", {"bob@example.com"});
  EXPECT_EQ(Deliver(record, kMessage, {0})[0].outcome, DeliveryOutcome::kDelivered);
  first.reset();  // the cached connection is now dead
  SmtpSink second(dir_, {}, port);
  REQUIRE_SINK(second);
  auto results = Deliver(record, kMessage, {0});
  EXPECT_EQ(results[0].outcome, DeliveryOutcome::kDelivered) << results[0].reply;
  EXPECT_EQ(agent.connections_opened(), 2u);
}

TEST_F(RelayAgentTest, MailRefusedTemporarilyDefersEveryRecipient) {
  SmtpSink sink(dir_, {"-r", "MAIL"});
  REQUIRE_SINK(sink);
  RelayAgent& agent = MakeAgent(sink.target());
  auto results = Deliver(Envelope("alice@example.org", {"bob@example.com", "carol@example.com"}), kMessage, {0, 1});
  ASSERT_EQ(results.size(), 2u);
  for (const RecipientResult& r : results) {
    EXPECT_EQ(r.outcome, DeliveryOutcome::kTransient);
    EXPECT_THAT(r.reply, StartsWith("450 4.3.0"));
    EXPECT_EQ(r.diagnostic_type, "smtp");
  }
  EXPECT_TRUE(sink.Dumps().empty());
  EXPECT_EQ(agent.connections_idle(), 1u);  // RSET made it clean again
}

TEST_F(RelayAgentTest, RecipientsRefusedPermanentlyMeanNoData) {
  SmtpSink sink(dir_, {"-f", "RCPT"});
  REQUIRE_SINK(sink);
  MakeAgent(sink.target());
  auto results = Deliver(Envelope("alice@example.org", {"bob@example.com"}), kMessage, {0});
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].outcome, DeliveryOutcome::kPermanent);
  EXPECT_THAT(results[0].reply, StartsWith("500 5.3.0"));
  EXPECT_TRUE(sink.Dumps().empty());
}

TEST_F(RelayAgentTest, FinalReplyDecidesEveryAcceptedRecipient) {
  SmtpSink hard(dir_, {"-f", "."});
  REQUIRE_SINK(hard);
  MakeAgent(hard.target());
  auto results = Deliver(Envelope("alice@example.org", {"bob@example.com", "carol@example.com"}), kMessage, {0, 1});
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].outcome, DeliveryOutcome::kPermanent);
  EXPECT_EQ(results[1].outcome, DeliveryOutcome::kPermanent);

  SmtpSink soft(dir_, {"-r", "."});
  REQUIRE_SINK(soft);
  MakeAgent(soft.target());
  results = Deliver(Envelope("alice@example.org", {"bob@example.com"}), kMessage, {0});
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].outcome, DeliveryOutcome::kTransient);
  EXPECT_THAT(results[0].reply, StartsWith("450 4.3.0"));
}

TEST_F(RelayAgentTest, ConnectionRefusedIsTransient) {
  RelayAgent& agent = MakeAgent("127.0.0.1:" + std::to_string(FreePort()));
  auto results = Deliver(Envelope("alice@example.org", {"bob@example.com"}), kMessage, {0});
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].outcome, DeliveryOutcome::kTransient);
  EXPECT_THAT(results[0].reply, AllOf(StartsWith("451 4.4.1 "), HasSubstr("refused")));
  EXPECT_EQ(results[0].diagnostic_type, "X-Sluice");
  EXPECT_EQ(agent.connections_opened(), 0u);
}

TEST_F(RelayAgentTest, ServiceClosingMidTransactionIsTransientAndNotReused) {
  SmtpSink sink(dir_, {"-Q", "RCPT"});
  REQUIRE_SINK(sink);
  RelayAgent& agent = MakeAgent(sink.target());
  auto results = Deliver(Envelope("alice@example.org", {"bob@example.com"}), kMessage, {0});
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].outcome, DeliveryOutcome::kTransient) << results[0].reply;
  EXPECT_EQ(agent.connections_idle(), 0u);
}

TEST_F(RelayAgentTest, HangUpAfterTheDotIsTransientAndSaysSo) {
  SmtpSink sink(dir_, {"-q", "."});
  REQUIRE_SINK(sink);
  RelayAgent& agent = MakeAgent(sink.target());
  auto results = Deliver(Envelope("alice@example.org", {"bob@example.com"}), kMessage, {0});
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].outcome, DeliveryOutcome::kTransient);
  EXPECT_THAT(results[0].reply, AllOf(StartsWith("451 4.4.2 lost connection"), HasSubstr("more than once")));
  EXPECT_EQ(agent.connections_idle(), 0u);
}

TEST_F(RelayAgentTest, EhloRefusedFallsBackToHelo) {
  SmtpSink sink(dir_, {"-f", "EHLO"});
  REQUIRE_SINK(sink);
  MakeAgent(sink.target());
  auto record = Envelope("alice@example.org", {"bob@example.com"});
  record.set_ret("FULL");  // DSN is not announced after HELO: RET stays out
  auto results = Deliver(record, kMessage, {0});
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].outcome, DeliveryOutcome::kDelivered) << results[0].reply;
  auto dumps = sink.Dumps();
  ASSERT_EQ(dumps.size(), 1u);
  EXPECT_THAT(dumps[0], HasSubstr("X-Client-Proto: SMTP\n"));
  EXPECT_THAT(dumps[0], HasSubstr("X-Mail-Args: <alice@example.org>\n"));
}

TEST_F(RelayAgentTest, UnreadableQueueContentDropsTheConnectionWithoutTheDot) {
  SmtpSink sink(dir_, {});
  REQUIRE_SINK(sink);
  RelayAgent& agent = MakeAgent(sink.target());
  auto record = Envelope("alice@example.org", {"bob@example.com"});
  // Content that ends before its recorded size (what a damaged queue would give).
  WriteFile(dir_ / "short", "Subject: cut\r\n\r\nten bytes.");
  MessageContent cut(std::make_shared<SharedFd>(::open((dir_ / "short").c_str(), O_RDONLY)), 0, 100000);
  auto results = RunAwaitable(io_, agent.Deliver(record, cut, std::vector<int>{0}));
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].outcome, DeliveryOutcome::kTransient);
  EXPECT_THAT(results[0].reply, StartsWith("451 4.3.0 read queue content"));
  // smtp-sink opens a capture file per transaction and fills it at the "."; none came.
  for (const std::string& d : sink.Dumps()) EXPECT_EQ(d, "");
  EXPECT_EQ(agent.connections_idle(), 0u);
}

TEST_F(RelayAgentTest, CancellationEndsADeliveryStuckOnTheNextHop) {
  // smtp-sink waits 100 s before it answers RCPT; the caller gives up after 200 ms (as the
  // scheduler does at delivery_timeout) and the agent must end then, not 100 s later
  // (RunAwaitable fails the test after 60 s).
  SmtpSink sink(dir_, {"-W", "RCPT:100"});
  REQUIRE_SINK(sink);
  RelayAgent& agent = MakeAgent(sink.target());
  auto record = Envelope("alice@example.org", {"bob@example.com"});
  WriteFile(dir_ / "message", kMessage);
  MessageContent path = testing::ContentFile(dir_ / "message");
  std::vector<int> indexes{0};
  auto race = [&]() -> asio::awaitable<size_t> {
    using namespace asio::experimental::awaitable_operators;
    asio::steady_timer timer(io_);
    timer.expires_after(std::chrono::milliseconds(200));
    auto delivery = asio::co_spawn(io_, agent.Deliver(record, path, indexes), asio::use_awaitable);
    auto first = co_await (std::move(delivery) || timer.async_wait(asio::use_awaitable));
    co_return first.index();
  };
  EXPECT_EQ(RunAwaitable(io_, race()), 1u);
  EXPECT_EQ(agent.connections_idle(), 0u);
}

// ---- Dovecot LMTP ----

TEST_F(RelayAgentTest, LmtpRepliesPerRecipientAfterTheContent) {
  DovecotLmtp dovecot(dir_, {"bob@example.com", "alice@example.org", "full@example.com"});
  REQUIRE_DOVECOT(dovecot);
  RelayAgent& agent = MakeAgent(dovecot.target(), /*lmtp=*/true);
  auto record = Envelope("sender@example.net",
                         {"bob@example.com", "nobody@example.com", "full@example.com", "alice@example.org"});
  auto results = Deliver(record, kMessage, {0, 1, 2, 3});
  ASSERT_EQ(results.size(), 4u);
  EXPECT_EQ(results[0].outcome, DeliveryOutcome::kDelivered) << results[0].reply;
  EXPECT_THAT(results[0].reply, HasSubstr("<bob@example.com>"));
  EXPECT_EQ(results[1].outcome, DeliveryOutcome::kPermanent);  // unknown user, at RCPT
  EXPECT_THAT(results[1].reply, StartsWith("550 5.1.1"));
  EXPECT_EQ(results[2].outcome, DeliveryOutcome::kPermanent) << results[2].reply;  // over quota, after "."
  EXPECT_THAT(results[2].reply, StartsWith("552 5.2.2"));
  EXPECT_EQ(results[3].outcome, DeliveryOutcome::kDelivered) << results[3].reply;
  EXPECT_THAT(results[3].reply, HasSubstr("<alice@example.org>"));
  // Dovecot's LMTP announces no DSN: the final delivery, ours to report (lmtp_assume_final).
  EXPECT_EQ(results[0].success, SuccessNotice::kDelivered);
  EXPECT_EQ(results[3].success, SuccessNotice::kDelivered);
  for (const char* user : {"bob@example.com", "alice@example.org"}) {
    auto mail = dovecot.Mail(user);
    ASSERT_EQ(mail.size(), 1u) << user;
    // Dovecot adds Return-Path:, Delivered-To: and Received: above the message.
    EXPECT_THAT(mail[0], HasSubstr("Return-Path: <sender@example.net>"));
    EXPECT_EQ(Lf(mail[0]).substr(Lf(mail[0]).size() - Lf(kMessage).size()), Lf(kMessage));
  }
  EXPECT_TRUE(dovecot.Mail("full@example.com").empty());
  EXPECT_EQ(agent.connections_idle(), 1u);
}

class RelayTlsTest : public RelayAgentTest {
 protected:
  // A self-signed certificate for the next hop (openssl CLI), readable by Dovecot.
  bool MakeCert(const std::string& name) {
    std::string cmd = "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=lmtp.test -keyout " +
                      (dir_ / (name + ".key")) + " -out " + (dir_ / (name + ".pem")) + " >/dev/null 2>&1 && chmod 644 " +
                      (dir_ / (name + ".key"));
    return std::system(cmd.c_str()) == 0;
  }
};

TEST_F(RelayTlsTest, StartTlsWhenOfferedAndVerifiedWithTheConfiguredCa) {
  ASSERT_TRUE(MakeCert("server"));
  DovecotLmtp dovecot(dir_, {"bob@example.com"}, dir_ / "server.pem", dir_ / "server.key");
  REQUIRE_DOVECOT(dovecot);
  // Opportunistic (no CA): encrypted, not verified.
  MakeAgent(dovecot.target(), /*lmtp=*/true);
  auto results = Deliver(Envelope("sender@example.net", {"bob@example.com"}), kMessage, {0});
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].outcome, DeliveryOutcome::kDelivered) << results[0].reply;
  // With the server's certificate as the CA: verified.
  sluice::v1::TlsConfig tls;
  tls.set_ca_file(dir_ / "server.pem");
  MakeAgent(dovecot.target(), /*lmtp=*/true, {}, absl::Seconds(30), tls);
  results = Deliver(Envelope("sender@example.net", {"bob@example.com"}), kMessage, {0});
  EXPECT_EQ(results[0].outcome, DeliveryOutcome::kDelivered) << results[0].reply;
  auto mail = dovecot.Mail("bob@example.com");
  ASSERT_EQ(mail.size(), 2u);
  for (const std::string& m : mail) EXPECT_THAT(m, HasSubstr("with LMTPS"));  // Dovecot: LMTP over TLS
}

TEST_F(RelayTlsTest, UnverifiableNextHopIsDeferredWhenACaIsConfigured) {
  ASSERT_TRUE(MakeCert("server"));
  ASSERT_TRUE(MakeCert("other"));
  DovecotLmtp dovecot(dir_, {"bob@example.com"}, dir_ / "server.pem", dir_ / "server.key");
  REQUIRE_DOVECOT(dovecot);
  sluice::v1::TlsConfig tls;
  tls.set_ca_file(dir_ / "other.pem");
  MakeAgent(dovecot.target(), /*lmtp=*/true, {}, absl::Seconds(30), tls);
  auto results = Deliver(Envelope("sender@example.net", {"bob@example.com"}), kMessage, {0});
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].outcome, DeliveryOutcome::kTransient);
  EXPECT_THAT(results[0].reply, StartsWith("451 4.7.5 TLS"));
  EXPECT_TRUE(dovecot.Mail("bob@example.com").empty());
}

}  // namespace
}  // namespace sluice::reinject
