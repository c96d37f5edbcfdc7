// tests/services/reinject/delivery/bounce_test.cc -- RFC 3464 reports, failure and success:
// structure checked by parsing with GMime (multipart/report; report-type=delivery-status,
// three parts), fields checked as text, Action/Status per recipient; NOTIFY, RET, ENVID,
// ORCPT honoured; never for <> or a report.
#include "services/reinject/delivery/bounce.h"

#include <gmime/gmime.h>

#include <gtest/gtest.h>

#include "lib/status/status_matchers.h"
#include "services/reinject/queue/proto_time.h"
#include "services/reinject/queue/queue_store.h"
#include "tests/services/reinject/testing/queue_test_support.h"

namespace sluice::reinject {
namespace {

using ::sluice::reinject::testing::Envelope;
using ::sluice::reinject::testing::kMessage;
using ::sluice::reinject::testing::ReadFile;
using ::sluice::reinject::testing::TempDir;
using ::sluice::reinject::testing::WriteFile;
using ::sluice::testing::IsOk;

// The text of a leaf part's decoded content.
std::string PartText(GMimeObject* object) {
  if (!GMIME_IS_PART(object)) return "";
  GMimeDataWrapper* content = g_mime_part_get_content(GMIME_PART(object));
  if (content == nullptr) return "";
  GMimeStream* out = g_mime_stream_mem_new();
  g_mime_data_wrapper_write_to_stream(content, out);
  GByteArray* bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(out));
  std::string text(reinterpret_cast<const char*>(bytes->data), bytes->len);
  g_object_unref(out);
  return text;
}

bool IsType(GMimeObject* object, const char* type, const char* subtype) {
  return g_mime_content_type_is_type(g_mime_object_get_content_type(object), type, subtype);
}

class BounceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { g_mime_init(); }

  void SetUp() override { WriteFile(dir_ / "original", kMessage); }

  sluice::v1::QueueRecord Original() {
    auto r = Envelope("alice@example.org", {"bob@example.com", "carol@example.net"});
    r.set_queue_id("0ORIGINAL");
    r.set_envid("ENV-123");
    *r.mutable_arrived_at() = ToProtoTime(absl::FromUnixSeconds(1700000000));
    r.mutable_recipients(0)->set_orcpt("rfc822;Bob@Example.com");
    return r;
  }

  // The report as queued: written into a queue writer, committed, read back.
  std::string Capture(const sluice::v1::QueueRecord& original, const std::vector<ReportedRecipient>& reported,
                      ReportKind kind = ReportKind::kFailure) {
    QueueStoreOptions o;
    o.queue_dir = dir_ / "capture";
    o.writer_buffer_bytes = 4096;
    auto store = QueueStore::Open(std::move(o));
    EXPECT_THAT(store, IsOk());
    auto writer = (*store)->Begin();
    EXPECT_THAT(writer, IsOk());
    BounceOptions options{"mx.test", "MAILER-DAEMON"};
    MessageContent content = testing::ContentFile(dir_ / "original");
    EXPECT_THAT(WriteDeliveryReport(**writer, original, content, kind, reported, options,
                                    absl::FromUnixSeconds(1700003600)),
                IsOk());
    asio::io_context io;
    auto id = testing::RunAwaitable(io, (*writer)->Commit(ReportEnvelope(original)));
    EXPECT_THAT(id, IsOk());
    return testing::ContentOf(**store, *id);
  }

  TempDir dir_;
};

ReportedRecipient Reported(int index, DsnAction action, std::string status, std::string reply,
                           std::string diagnostic_type, std::string remote_mta) {
  ReportedRecipient r;
  r.index = index;
  r.action = action;
  r.status = std::move(status);
  r.reply = std::move(reply);
  r.diagnostic_type = std::move(diagnostic_type);
  r.remote_mta = std::move(remote_mta);
  return r;
}

std::vector<ReportedRecipient> BobFailed() {
  return {Reported(0, DsnAction::kFailed, "5.1.1", "550 5.1.1 <bob@example.com>: Recipient address rejected", "smtp",
                   "mx.example.com")};
}

// A report parsed by GMime, released at the end of the test.
class ParsedReport {
 public:
  explicit ParsedReport(const std::string& text) : text_(text) {
    stream_ = g_mime_stream_mem_new_with_buffer(text_.data(), text_.size());
    parser_ = g_mime_parser_new_with_stream(stream_);
    message_ = g_mime_parser_construct_message(parser_, nullptr);
  }
  ~ParsedReport() {
    if (message_ != nullptr) g_object_unref(message_);
    g_object_unref(parser_);
    g_object_unref(stream_);
  }
  GMimeMessage* message() const { return message_; }
  // The top-level multipart's parts (empty when it is not one).
  std::vector<GMimeObject*> Parts() const {
    std::vector<GMimeObject*> out;
    if (message_ == nullptr) return out;
    GMimeObject* top = g_mime_message_get_mime_part(message_);
    if (!GMIME_IS_MULTIPART(top)) return out;
    for (int i = 0; i < g_mime_multipart_get_count(GMIME_MULTIPART(top)); ++i) {
      out.push_back(g_mime_multipart_get_part(GMIME_MULTIPART(top), i));
    }
    return out;
  }
  // The per-recipient field groups of the message/delivery-status part, in order.
  std::vector<std::string> RecipientGroups() const {
    std::vector<std::string> groups;
    auto parts = Parts();
    if (parts.size() < 2) return groups;
    std::string fields = PartText(parts[1]);
    size_t start = fields.find("\r\n\r\n");  // after the per-message group
    while (start != std::string::npos) {
      start += 4;
      size_t end = fields.find("\r\n\r\n", start);
      std::string group = fields.substr(start, end == std::string::npos ? std::string::npos : end - start + 2);
      if (!group.empty() && group != "\r\n") groups.push_back(group);
      start = end;
    }
    return groups;
  }

 private:
  std::string text_;
  GMimeStream* stream_;
  GMimeParser* parser_;
  GMimeMessage* message_;
};

TEST_F(BounceTest, ReportIsMultipartReportWithThreeParts) {
  std::string dsn = Capture(Original(), BobFailed());
  GMimeStream* stream = g_mime_stream_mem_new_with_buffer(dsn.data(), dsn.size());
  GMimeParser* parser = g_mime_parser_new_with_stream(stream);
  GMimeMessage* message = g_mime_parser_construct_message(parser, nullptr);
  ASSERT_NE(message, nullptr);
  GMimeObject* top = g_mime_message_get_mime_part(message);
  ASSERT_TRUE(GMIME_IS_MULTIPART(top));
  EXPECT_TRUE(IsType(top, "multipart", "report"));
  EXPECT_STREQ(g_mime_content_type_get_parameter(g_mime_object_get_content_type(top), "report-type"),
               "delivery-status");
  GMimeMultipart* multipart = GMIME_MULTIPART(top);
  ASSERT_EQ(g_mime_multipart_get_count(multipart), 3);
  GMimeObject* human = g_mime_multipart_get_part(multipart, 0);
  GMimeObject* status = g_mime_multipart_get_part(multipart, 1);
  GMimeObject* original = g_mime_multipart_get_part(multipart, 2);
  EXPECT_TRUE(IsType(human, "text", "plain"));
  EXPECT_TRUE(IsType(status, "message", "delivery-status"));
  EXPECT_TRUE(IsType(original, "text", "rfc822-headers"));  // no RET: headers only

  EXPECT_NE(PartText(human).find("<bob@example.com>: 550 5.1.1"), std::string::npos) << PartText(human);
  std::string fields = PartText(status);
  // Per-message fields, then a blank line, then the recipient's block.
  EXPECT_NE(fields.find("Reporting-MTA: dns; mx.test\r\n"), std::string::npos) << fields;
  EXPECT_NE(fields.find("Original-Envelope-Id: ENV-123\r\n"), std::string::npos) << fields;
  EXPECT_NE(fields.find("Arrival-Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"), std::string::npos) << fields;
  size_t block = fields.find("\r\n\r\n");
  ASSERT_NE(block, std::string::npos);
  std::string rcpt = fields.substr(block + 4);
  EXPECT_EQ(rcpt.find("Original-Recipient: rfc822; Bob@Example.com\r\n"), 0u) << rcpt;
  EXPECT_NE(rcpt.find("Final-Recipient: rfc822; bob@example.com\r\n"), std::string::npos);
  EXPECT_NE(rcpt.find("Action: failed\r\n"), std::string::npos);
  EXPECT_NE(rcpt.find("Status: 5.1.1\r\n"), std::string::npos);
  EXPECT_NE(rcpt.find("Remote-MTA: dns; mx.example.com\r\n"), std::string::npos);
  EXPECT_NE(rcpt.find("Diagnostic-Code: smtp; 550 5.1.1 <bob@example.com>: Recipient address rejected\r\n"),
            std::string::npos);
  EXPECT_EQ(rcpt.find("carol"), std::string::npos);  // only failed recipients are reported

  std::string headers = PartText(original);
  EXPECT_NE(headers.find("Subject: hello"), std::string::npos);
  EXPECT_EQ(headers.find("Body line"), std::string::npos);

  EXPECT_STREQ(g_mime_message_get_subject(message), "Undelivered Mail Returned to Sender");
  EXPECT_STREQ(g_mime_object_get_header(GMIME_OBJECT(message), "To"), "<alice@example.org>");
  EXPECT_STREQ(g_mime_object_get_header(GMIME_OBJECT(message), "Auto-Submitted"), "auto-replied");
  std::string from = g_mime_object_get_header(GMIME_OBJECT(message), "From");
  EXPECT_NE(from.find("MAILER-DAEMON@mx.test"), std::string::npos);
  g_object_unref(message);
  g_object_unref(parser);
  g_object_unref(stream);
}

TEST_F(BounceTest, RetFullReturnsTheWholeMessage) {
  auto original = Original();
  original.set_ret("FULL");
  std::string dsn = Capture(original, BobFailed());
  GMimeStream* stream = g_mime_stream_mem_new_with_buffer(dsn.data(), dsn.size());
  GMimeParser* parser = g_mime_parser_new_with_stream(stream);
  GMimeMessage* message = g_mime_parser_construct_message(parser, nullptr);
  ASSERT_NE(message, nullptr);
  GMimeMultipart* multipart = GMIME_MULTIPART(g_mime_message_get_mime_part(message));
  ASSERT_EQ(g_mime_multipart_get_count(multipart), 3);
  GMimeObject* part = g_mime_multipart_get_part(multipart, 2);
  ASSERT_TRUE(GMIME_IS_MESSAGE_PART(part));
  GMimeMessage* returned = g_mime_message_part_get_message(GMIME_MESSAGE_PART(part));
  ASSERT_NE(returned, nullptr);
  EXPECT_STREQ(g_mime_message_get_subject(returned), "hello");
  // The original is inside byte for byte.
  EXPECT_NE(dsn.find(kMessage), std::string::npos);
  g_object_unref(message);
  g_object_unref(parser);
  g_object_unref(stream);
}

TEST_F(BounceTest, EnvelopeIsFromTheNullSenderToTheOriginalSender) {
  auto envelope = ReportEnvelope(Original());
  EXPECT_EQ(envelope.sender(), "");
  ASSERT_EQ(envelope.recipients_size(), 1);
  EXPECT_EQ(envelope.recipients(0).address(), "alice@example.org");
  EXPECT_TRUE(envelope.is_bounce());
  EXPECT_EQ(envelope.session_id(), "S1");
}

TEST_F(BounceTest, NotifyDecidesWhetherAFailureIsReported) {
  auto original = Original();
  sluice::v1::QueueRecipient r;
  EXPECT_TRUE(WantsFailureReport(original, r));  // no NOTIFY: FAILURE
  r.set_notify("FAILURE,DELAY");
  EXPECT_TRUE(WantsFailureReport(original, r));
  r.set_notify("delay, failure");
  EXPECT_TRUE(WantsFailureReport(original, r));
  r.set_notify("NEVER");
  EXPECT_FALSE(WantsFailureReport(original, r));
  r.set_notify("SUCCESS");
  EXPECT_FALSE(WantsFailureReport(original, r));
  r.set_notify("SUCCESS,DELAY");
  EXPECT_FALSE(WantsFailureReport(original, r));
}

TEST_F(BounceTest, NeverForTheNullSenderNorForAReport) {
  sluice::v1::QueueRecipient r;
  auto null_sender = Original();
  null_sender.set_sender("");
  EXPECT_FALSE(WantsFailureReport(null_sender, r));
  auto report = Original();
  report.set_is_bounce(true);
  EXPECT_FALSE(WantsFailureReport(report, r));
}

TEST_F(BounceTest, StatusComesFromTheReply) {
  EXPECT_EQ(StatusOfReply("550 5.1.1 user unknown", "5.0.0"), "5.1.1");
  EXPECT_EQ(StatusOfReply("452-4.2.2 mailbox full", "4.0.0"), "4.2.2");
  EXPECT_EQ(StatusOfReply("554 no enhanced code", "5.0.0"), "5.0.0");
  EXPECT_EQ(StatusOfReply("451 try later", "4.4.7"), "4.0.0");
  EXPECT_EQ(StatusOfReply("550 4.1.1 class mismatch", "5.0.0"), "5.0.0");
  EXPECT_EQ(StatusOfReply("connection refused", "4.4.1"), "4.4.1");
}

TEST_F(BounceTest, HostileTextNeverBreaksAHeaderLine) {
  auto original = Original();
  original.set_envid("ENV\r\nX-Injected: yes");
  std::vector<ReportedRecipient> failed{
      Reported(0, DsnAction::kFailed, "5.0.0", "550 bad\r\nX-Evil: 1\r\n" + std::string(5000, 'a'), "smtp", "")};
  std::string dsn = Capture(original, failed);
  EXPECT_EQ(dsn.find("\r\nX-Injected"), std::string::npos);
  EXPECT_EQ(dsn.find("\r\nX-Evil"), std::string::npos);
  size_t start = 0;
  while (start < dsn.size()) {
    size_t end = dsn.find("\r\n", start);
    if (end == std::string::npos) end = dsn.size();
    EXPECT_LE(end - start, 998u);
    start = end + 2;
  }
}

// ---- success notices (NOTIFY=SUCCESS) ----

std::vector<ReportedRecipient> BobDeliveredCarolRelayed() {
  return {Reported(0, DsnAction::kDelivered, "2.0.0", "250 2.0.0 delivered to maildir", "X-Sluice", ""),
          Reported(1, DsnAction::kRelayed, "2.0.0", "250 2.0.0 Ok: queued as 4XyZ", "smtp", "mx.example.net")};
}

TEST_F(BounceTest, SuccessReportSaysDeliveredOrRelayedPerRecipient) {
  ParsedReport report(Capture(Original(), BobDeliveredCarolRelayed(), ReportKind::kSuccess));
  ASSERT_NE(report.message(), nullptr);
  EXPECT_STREQ(g_mime_message_get_subject(report.message()), "Successful Mail Delivery Report");
  GMimeObject* top = g_mime_message_get_mime_part(report.message());
  EXPECT_TRUE(IsType(top, "multipart", "report"));
  EXPECT_STREQ(g_mime_content_type_get_parameter(g_mime_object_get_content_type(top), "report-type"),
               "delivery-status");
  auto parts = report.Parts();
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_TRUE(IsType(parts[0], "text", "plain"));
  EXPECT_TRUE(IsType(parts[1], "message", "delivery-status"));
  EXPECT_TRUE(IsType(parts[2], "text", "rfc822-headers"));

  std::string human = PartText(parts[0]);
  EXPECT_NE(human.find("Your message was delivered"), std::string::npos) << human;
  EXPECT_EQ(human.find("could not be delivered"), std::string::npos) << human;
  EXPECT_NE(human.find("<bob@example.com>: 250 2.0.0 delivered to maildir"), std::string::npos) << human;
  EXPECT_NE(human.find("<carol@example.net>: relayed to mx.example.net: 250 2.0.0 Ok"), std::string::npos) << human;

  std::string fields = PartText(parts[1]);
  EXPECT_NE(fields.find("Reporting-MTA: dns; mx.test\r\n"), std::string::npos) << fields;
  EXPECT_NE(fields.find("Original-Envelope-Id: ENV-123\r\n"), std::string::npos) << fields;
  auto groups = report.RecipientGroups();
  ASSERT_EQ(groups.size(), 2u) << fields;
  EXPECT_EQ(groups[0].find("Original-Recipient: rfc822; Bob@Example.com\r\n"), 0u) << groups[0];
  EXPECT_NE(groups[0].find("Final-Recipient: rfc822; bob@example.com\r\n"), std::string::npos) << groups[0];
  EXPECT_NE(groups[0].find("Action: delivered\r\n"), std::string::npos) << groups[0];
  EXPECT_NE(groups[0].find("Status: 2.0.0\r\n"), std::string::npos) << groups[0];
  EXPECT_EQ(groups[0].find("Remote-MTA:"), std::string::npos) << groups[0];
  EXPECT_NE(groups[1].find("Final-Recipient: rfc822; carol@example.net\r\n"), std::string::npos) << groups[1];
  EXPECT_EQ(groups[1].find("Original-Recipient:"), std::string::npos) << groups[1];  // no ORCPT given
  EXPECT_NE(groups[1].find("Action: relayed\r\n"), std::string::npos) << groups[1];
  EXPECT_NE(groups[1].find("Status: 2.0.0\r\n"), std::string::npos) << groups[1];
  EXPECT_NE(groups[1].find("Remote-MTA: dns; mx.example.net\r\n"), std::string::npos) << groups[1];
  EXPECT_NE(groups[1].find("Diagnostic-Code: smtp; 250 2.0.0 Ok: queued as 4XyZ\r\n"), std::string::npos) << groups[1];
  EXPECT_EQ(fields.find("Action: failed"), std::string::npos);

  std::string headers = PartText(parts[2]);
  EXPECT_NE(headers.find("Subject: hello"), std::string::npos);
  EXPECT_EQ(headers.find("Body line"), std::string::npos);
  EXPECT_STREQ(g_mime_object_get_header(GMIME_OBJECT(parts[2]), "Content-Description"), "Delivered Message Headers");
}

TEST_F(BounceTest, SuccessReportReturnsOnlyTheHeadersWhateverRetSays) {
  // RFC 3461 §4.3: a DSN without failures SHOULD carry the headers only (Postfix: always).
  for (const char* ret : {"FULL", "HDRS", ""}) {
    auto original = Original();
    original.set_ret(ret);
    std::string dsn = Capture(original, BobDeliveredCarolRelayed(), ReportKind::kSuccess);
    ParsedReport report(dsn);
    auto parts = report.Parts();
    ASSERT_EQ(parts.size(), 3u) << ret;
    EXPECT_TRUE(IsType(parts[2], "text", "rfc822-headers")) << ret;
    EXPECT_EQ(dsn.find("Body line"), std::string::npos) << ret;
  }
  // The same original with RET=FULL in a failure report comes back whole.
  auto original = Original();
  original.set_ret("FULL");
  std::string dsn = Capture(original, BobFailed(), ReportKind::kFailure);
  EXPECT_NE(dsn.find(kMessage), std::string::npos);
}

TEST_F(BounceTest, ReportsOfBothKindsAreDistinctMessages) {
  ParsedReport failure(Capture(Original(), BobFailed(), ReportKind::kFailure));
  ParsedReport success(Capture(Original(), BobDeliveredCarolRelayed(), ReportKind::kSuccess));
  ASSERT_NE(failure.message(), nullptr);
  ASSERT_NE(success.message(), nullptr);
  EXPECT_STRNE(g_mime_message_get_message_id(failure.message()), g_mime_message_get_message_id(success.message()));
}

TEST_F(BounceTest, NotifyDecidesWhetherASuccessIsReported) {
  auto original = Original();
  sluice::v1::QueueRecipient r;
  EXPECT_FALSE(WantsSuccessReport(original, r));  // no NOTIFY: FAILURE (and DELAY) only
  r.set_notify("SUCCESS");
  EXPECT_TRUE(WantsSuccessReport(original, r));
  r.set_notify("failure, success");
  EXPECT_TRUE(WantsSuccessReport(original, r));
  r.set_notify("SUCCESS,FAILURE,DELAY");
  EXPECT_TRUE(WantsSuccessReport(original, r));
  EXPECT_TRUE(WantsFailureReport(original, r));
  r.set_notify("FAILURE,DELAY");
  EXPECT_FALSE(WantsSuccessReport(original, r));
  r.set_notify("NEVER");
  EXPECT_FALSE(WantsSuccessReport(original, r));

  r.set_notify("SUCCESS");
  auto null_sender = Original();
  null_sender.set_sender("");
  EXPECT_FALSE(WantsSuccessReport(null_sender, r));
  auto report = Original();
  report.set_is_bounce(true);
  EXPECT_FALSE(WantsSuccessReport(report, r));
}

}  // namespace
}  // namespace sluice::reinject
