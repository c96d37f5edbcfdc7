// tests/services/filter-bridge/rules_filter_test.cc
//
// Every rule condition matches what it says and nothing else, every action does what it
// says, a real multipart message is matched by attachment file name and content type (and
// by decoded text), and bad rules are config errors naming the rule and the field.
#include "services/filter-bridge/filters/rules_filter.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <fstream>

#include "lib/status/status_matchers.h"
#include "services/filter-bridge/filters/mime_scan.h"
#include "tests/services/filter-bridge/filter_test_support.h"

namespace sluice::filter_bridge {
namespace {

using ::sluice::testing::IsOk;
using ::sluice::testing::StatusIs;
using ::testing::HasSubstr;
using testing::ApplyDecision;
using testing::ContextHolder;

const char kPlain[] =
    "From: Alice <alice@example.com>\r\n"
    "To: bob@example.net\r\n"
    "Subject: quarterly\r\n"
    "  report\r\n"
    "X-Spam-Flag: YES\r\n"
    "\r\n"
    "Hello Bob,\r\n"
    "the numbers are in.\r\n";

// A multipart/mixed message: a quoted-printable text part, a base64 text part whose decoded
// text holds a phrase, a PDF and a Windows executable attachment (RFC 2231 file name).
const char kMultipart[] =
    "From: alice@example.com\r\n"
    "To: bob@example.net\r\n"
    "Subject: files\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=\"outer\"\r\n"
    "\r\n"
    "preamble\r\n"
    "--outer\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: quoted-printable\r\n"
    "\r\n"
    "Caf=C3=A9 menu attached=\r\n"
    " today\r\n"
    "--outer\r\n"
    "Content-Type: text/plain; charset=us-ascii\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n"
    "c2VjcmV0IHdpcmUgdHJhbnNmZXIKc2Vjb25kIGxpbmUK\r\n"
    "--outer\r\n"
    "Content-Type: application/pdf; name=\"menu.pdf\"\r\n"
    "Content-Disposition: attachment; filename=\"menu.pdf\"\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n"
    "JVBERi0xLjQKJcfs\r\n"
    "--outer\r\n"
    "Content-Type: application/x-msdownload\r\n"
    "Content-Disposition: attachment; filename*=utf-8''invoice%20copy.exe\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n"
    "TVqQAAMAAAAEAAAA\r\n"
    "--outer--\r\n";

std::unique_ptr<RulesFilter> Rules(const std::vector<sluice::v1::Rule>& rules) {
  auto compiled = CompileRules(rules);
  EXPECT_THAT(compiled, IsOk());
  return std::make_unique<RulesFilter>(std::move(compiled).value());
}

sluice::v1::Rule RejectWhen(const std::function<void(sluice::v1::RuleMatch*)>& set) {
  sluice::v1::Rule r;
  r.set_name("r");
  r.set_action(sluice::v1::RULE_ACTION_REJECT);
  set(r.mutable_match());
  return r;
}

// Does a reject rule with this condition fire on `holder`'s message?
bool Fires(const ContextHolder& holder, const std::function<void(sluice::v1::RuleMatch*)>& set) {
  auto filter = Rules({RejectWhen(set)});
  FilterOutcome out = filter->Evaluate(holder.ctx());
  EXPECT_THAT(out, IsOk());
  return out.ok() && out->verdict == Verdict::kReject;
}

TEST(RulesConditionTest, HeaderPresenceAndPatternOnUnfoldedValue) {
  ContextHolder h(kPlain);
  EXPECT_TRUE(Fires(h, [](auto* m) { m->set_header("x-spam-flag"); }));
  EXPECT_FALSE(Fires(h, [](auto* m) { m->set_header("X-Absent"); }));
  EXPECT_TRUE(Fires(h, [](auto* m) {
    m->set_header("Subject");
    m->set_header_pattern("^quarterly  report$");
  }));
  EXPECT_FALSE(Fires(h, [](auto* m) {
    m->set_header("Subject");
    m->set_header_pattern("^report");
  }));
}

TEST(RulesConditionTest, HeaderConditionSeesEarlierFiltersEdits) {
  ContextHolder h(kPlain);
  h.edits.headers.push_back(HeaderEdit::Add("X-Added", "by an earlier filter"));
  EXPECT_TRUE(Fires(h, [](auto* m) {
    m->set_header("X-Added");
    m->set_header_pattern("earlier");
  }));
  h.edits.headers.push_back(HeaderEdit::RemoveAll("X-Spam-Flag"));
  EXPECT_FALSE(Fires(h, [](auto* m) { m->set_header("X-Spam-Flag"); }));
}

TEST(RulesConditionTest, BodyLines) {
  ContextHolder h(kPlain);
  EXPECT_TRUE(Fires(h, [](auto* m) { m->set_body_pattern("^the numbers"); }));
  EXPECT_FALSE(Fires(h, [](auto* m) { m->set_body_pattern("Subject"); }));  // header is not body
}

TEST(RulesConditionTest, BodyLinesAreMimeDecoded) {
  ContextHolder h(kMultipart);
  EXPECT_TRUE(Fires(h, [](auto* m) { m->set_body_pattern("^secret wire transfer$"); }));  // base64
  EXPECT_TRUE(Fires(h, [](auto* m) { m->set_body_pattern("Café menu attached today"); }));  // QP, UTF-8
  EXPECT_FALSE(Fires(h, [](auto* m) { m->set_body_pattern("c2VjcmV0"); }));  // not the encoded form
  EXPECT_FALSE(Fires(h, [](auto* m) { m->set_body_pattern("JVBERi0"); }));   // not a text part
}

TEST(RulesConditionTest, AttachmentFilenameAndContentTypeOverEveryPart) {
  ContextHolder h(kMultipart);
  EXPECT_TRUE(Fires(h, [](auto* m) { m->set_attachment_filename_pattern("(?i)\\.exe$"); }));
  EXPECT_TRUE(Fires(h, [](auto* m) { m->set_attachment_filename_pattern("^invoice copy\\.exe$"); }));
  EXPECT_TRUE(Fires(h, [](auto* m) { m->set_attachment_filename_pattern("^menu\\.pdf$"); }));
  EXPECT_FALSE(Fires(h, [](auto* m) { m->set_attachment_filename_pattern("\\.zip$"); }));
  EXPECT_TRUE(Fires(h, [](auto* m) { m->set_attachment_content_type_pattern("^application/x-msdownload$"); }));
  EXPECT_TRUE(Fires(h, [](auto* m) { m->set_attachment_content_type_pattern("^multipart/mixed$"); }));
  EXPECT_FALSE(Fires(h, [](auto* m) { m->set_attachment_content_type_pattern("^image/"); }));
  ContextHolder plain(kPlain);
  EXPECT_FALSE(Fires(plain, [](auto* m) { m->set_attachment_filename_pattern("."); }));
  EXPECT_TRUE(Fires(plain, [](auto* m) { m->set_attachment_content_type_pattern("^text/plain$"); }));
}

TEST(MimeScanTest, PartsOfTheMultipartMessage) {
  MimeScan scan = ScanMimeBytes(kMultipart, MimeLimits{});
  ASSERT_EQ(scan.parts.size(), 5u);
  EXPECT_EQ(scan.parts[0].content_type, "multipart/mixed");
  EXPECT_EQ(scan.parts[3].filename, "menu.pdf");
  EXPECT_EQ(scan.parts[4].filename, "invoice copy.exe");
  EXPECT_FALSE(scan.truncated);
}

TEST(MimeScanTest, BoundsCutTheScanShort) {
  MimeLimits limits;
  limits.max_parts = 2;
  MimeScan scan = ScanMimeBytes(kMultipart, limits);
  EXPECT_EQ(scan.parts.size(), 2u);
  EXPECT_TRUE(scan.truncated);

  std::string nested = "Content-Type: multipart/mixed; boundary=b0\r\n\r\n";
  for (int i = 1; i < 60; ++i) {
    nested += "--b" + std::to_string(i - 1) + "\r\nContent-Type: multipart/mixed; boundary=b" +
              std::to_string(i) + "\r\n\r\n";
  }
  MimeScan deep = ScanMimeBytes(nested, MimeLimits{});
  EXPECT_TRUE(deep.truncated);
  EXPECT_LE(deep.parts.size(), MimeLimits{}.max_depth + 1);
}

TEST(RulesConditionTest, Envelope) {
  ContextHolder h(kPlain);
  h.envelope = testing::MakeEnvelope("alice@example.com", {"carol@example.org", "bob@example.net"});
  EXPECT_TRUE(Fires(h, [](auto* m) { m->set_sender_pattern("@example\\.com$"); }));
  EXPECT_FALSE(Fires(h, [](auto* m) { m->set_sender_pattern("^bob@"); }));
  EXPECT_TRUE(Fires(h, [](auto* m) { m->set_recipient_pattern("^bob@"); }));  // any recipient
  EXPECT_FALSE(Fires(h, [](auto* m) { m->set_recipient_pattern("^dave@"); }));
  h.envelope.set_mail_from("");
  EXPECT_TRUE(Fires(h, [](auto* m) { m->set_sender_pattern("^$"); }));  // null sender
}

TEST(RulesConditionTest, ClientFacts) {
  ContextHolder h(kPlain);
  EXPECT_TRUE(Fires(h, [](auto* m) { m->add_client_cidr("192.0.2.0/24"); }));
  EXPECT_TRUE(Fires(h, [](auto* m) {
    m->add_client_cidr("2001:db8::/32");
    m->add_client_cidr("192.0.2.10/32");
  }));
  EXPECT_FALSE(Fires(h, [](auto* m) { m->add_client_cidr("198.51.100.0/24"); }));
  EXPECT_TRUE(Fires(h, [](auto* m) { m->set_client_name_pattern("\\.client\\.example$"); }));
  EXPECT_FALSE(Fires(h, [](auto* m) { m->set_client_name_pattern("^unknown$"); }));
  EXPECT_TRUE(Fires(h, [](auto* m) { m->set_helo_pattern("^helo\\."); }));
  EXPECT_FALSE(Fires(h, [](auto* m) { m->set_helo_pattern("^ehlo\\."); }));
}

TEST(RulesConditionTest, SizeOver) {
  ContextHolder h(kPlain);
  const uint64_t size = sizeof(kPlain) - 1;
  EXPECT_TRUE(Fires(h, [&](auto* m) { m->set_size_over_bytes(size - 1); }));
  EXPECT_FALSE(Fires(h, [&](auto* m) { m->set_size_over_bytes(size); }));
}

TEST(RulesConditionTest, TlsAndAuthenticatedFromTheFullSessionRecord) {
  ContextHolder h(kPlain);
  EXPECT_TRUE(Fires(h, [](auto* m) { m->set_tls("yes"); }));
  EXPECT_FALSE(Fires(h, [](auto* m) { m->set_tls("no"); }));
  EXPECT_TRUE(Fires(h, [](auto* m) { m->set_authenticated("yes"); }));
  h.session.clear_sasl_user();
  h.session.clear_tls_version();
  EXPECT_TRUE(Fires(h, [](auto* m) { m->set_authenticated("no"); }));
  EXPECT_TRUE(Fires(h, [](auto* m) { m->set_tls("no"); }));
}

TEST(RulesConditionTest, IncompleteSessionNeverMatchesTlsOrAuthRulesAndSaysSo) {
  ContextHolder h(kPlain);
  h.session = testing::MakeSession(/*complete=*/false);
  EXPECT_FALSE(Fires(h, [](auto* m) { m->set_tls("no"); }));
  EXPECT_FALSE(Fires(h, [](auto* m) {
    m->set_tls("yes");
    m->set_invert(true);
  }));
  auto filter = Rules({RejectWhen([](auto* m) { m->set_authenticated("no"); })});
  FilterOutcome out = filter->Evaluate(h.ctx());
  ASSERT_THAT(out, IsOk());
  EXPECT_THAT(out->detail, HasSubstr("incomplete"));
}

TEST(RulesConditionTest, AllConditionsMustHoldAndInvertNegates) {
  ContextHolder h(kPlain);
  EXPECT_TRUE(Fires(h, [](auto* m) {
    m->set_sender_pattern("alice");
    m->set_header("X-Spam-Flag");
  }));
  EXPECT_FALSE(Fires(h, [](auto* m) {
    m->set_sender_pattern("alice");
    m->set_header("X-Absent");
  }));
  EXPECT_TRUE(Fires(h, [](auto* m) {
    m->set_header("X-Absent");
    m->set_invert(true);
  }));
  EXPECT_FALSE(Fires(h, [](auto* m) {
    m->set_header("X-Spam-Flag");
    m->set_invert(true);
  }));
}

sluice::v1::Rule Action(sluice::v1::RuleAction action, std::string name) {
  sluice::v1::Rule r;
  r.set_name(std::move(name));
  r.set_action(action);
  return r;
}

TEST(RulesActionTest, RejectWithDefaultAndCustomReply) {
  ContextHolder h(kPlain);
  FilterOutcome out = Rules({Action(sluice::v1::RULE_ACTION_REJECT, "no")})->Evaluate(h.ctx());
  ASSERT_THAT(out, IsOk());
  EXPECT_EQ(out->verdict, Verdict::kReject);
  EXPECT_EQ(out->reply.ToString(), "550 5.7.1 Message content rejected");

  sluice::v1::Rule custom = Action(sluice::v1::RULE_ACTION_REJECT, "custom");
  custom.set_code(554);
  custom.set_enhanced_code("5.7.0");
  custom.set_text("Executables are not accepted");
  out = Rules({custom})->Evaluate(h.ctx());
  ASSERT_THAT(out, IsOk());
  EXPECT_EQ(out->reply.ToString(), "554 5.7.0 Executables are not accepted");
}

TEST(RulesActionTest, TempfailAndDiscard) {
  ContextHolder h(kPlain);
  FilterOutcome out = Rules({Action(sluice::v1::RULE_ACTION_TEMPFAIL, "t")})->Evaluate(h.ctx());
  ASSERT_THAT(out, IsOk());
  EXPECT_EQ(out->verdict, Verdict::kTempfail);
  EXPECT_EQ(out->reply.ToString(), "451 4.7.1 Message content deferred");
  out = Rules({Action(sluice::v1::RULE_ACTION_DISCARD, "d")})->Evaluate(h.ctx());
  ASSERT_THAT(out, IsOk());
  EXPECT_EQ(out->verdict, Verdict::kDiscard);
}

TEST(RulesActionTest, AcceptStopsTheRules) {
  ContextHolder h(kPlain);
  FilterOutcome out = Rules({Action(sluice::v1::RULE_ACTION_ACCEPT, "a"),
                             Action(sluice::v1::RULE_ACTION_REJECT, "never")})
                          ->Evaluate(h.ctx());
  ASSERT_THAT(out, IsOk());
  EXPECT_EQ(out->verdict, Verdict::kAccept);
  EXPECT_THAT(out->detail, HasSubstr("rule a"));
}

TEST(RulesActionTest, HeaderActionsAndHoldContinue) {
  ContextHolder h(kPlain);
  sluice::v1::Rule add = Action(sluice::v1::RULE_ACTION_ADD_HEADER, "add");
  add.set_header_name("X-Rules");
  add.set_header_value("seen");
  sluice::v1::Rule replace = Action(sluice::v1::RULE_ACTION_REPLACE_HEADER, "replace");
  replace.set_header_name("Subject");
  replace.set_header_value("[checked] quarterly report");
  sluice::v1::Rule remove = Action(sluice::v1::RULE_ACTION_REMOVE_HEADER, "remove");
  remove.set_header_name("X-Spam-Flag");
  sluice::v1::Rule hold = Action(sluice::v1::RULE_ACTION_HOLD, "hold");
  hold.set_text("suspicious attachment");
  FilterOutcome out = Rules({add, replace, remove, hold})->Evaluate(h.ctx());
  ASSERT_THAT(out, IsOk());
  EXPECT_EQ(out->verdict, Verdict::kContinue);
  EXPECT_TRUE(out->hold);
  EXPECT_EQ(out->hold_reason, "suspicious attachment");
  EXPECT_EQ(ApplyDecision(*h.spool, *out),
            "From: Alice <alice@example.com>\r\n"
            "To: bob@example.net\r\n"
            "Subject: [checked] quarterly report\r\n"
            "X-Rules: seen\r\n"
            "\r\n"
            "Hello Bob,\r\n"
            "the numbers are in.\r\n");
}

TEST(RulesActionTest, NoMatchIsContinueWithoutEdits) {
  ContextHolder h(kPlain);
  FilterOutcome out = Rules({RejectWhen([](auto* m) { m->set_header("X-Absent"); })})->Evaluate(h.ctx());
  ASSERT_THAT(out, IsOk());
  EXPECT_EQ(out->verdict, Verdict::kContinue);
  EXPECT_TRUE(out->header_edits.empty());
  EXPECT_FALSE(out->hold);
}

absl::Status CompileError(const sluice::v1::Rule& rule) {
  sluice::v1::Rule ok = Action(sluice::v1::RULE_ACTION_ACCEPT, "first");
  return CompileRules({ok, rule}).status();
}

TEST(RulesConfigTest, BadPatternsAreNamedAtConfigTime) {
  sluice::v1::Rule r = Action(sluice::v1::RULE_ACTION_REJECT, "broken");
  r.mutable_match()->set_body_pattern("(unclosed");
  EXPECT_THAT(CompileError(r), StatusIs(absl::StatusCode::kInvalidArgument, "rule 'broken' (#2): body_pattern"));
  sluice::v1::Rule backref = Action(sluice::v1::RULE_ACTION_REJECT, "");
  backref.mutable_match()->set_header("Subject");
  backref.mutable_match()->set_header_pattern("(a)\\1");  // backreferences are not RE2
  EXPECT_THAT(CompileError(backref), StatusIs(absl::StatusCode::kInvalidArgument, "rule 'rule-2' (#2): header_pattern"));
  sluice::v1::Rule att = Action(sluice::v1::RULE_ACTION_REJECT, "att");
  att.mutable_match()->set_attachment_filename_pattern("*.exe");
  EXPECT_THAT(CompileError(att), StatusIs(absl::StatusCode::kInvalidArgument, "attachment_filename_pattern"));
}

TEST(RulesConfigTest, OtherConfigErrors) {
  sluice::v1::Rule r = Action(sluice::v1::RULE_ACTION_REJECT, "x");
  r.mutable_match()->set_header_pattern("spam");
  EXPECT_THAT(CompileError(r), StatusIs(absl::StatusCode::kInvalidArgument, "needs header"));
  r = Action(sluice::v1::RULE_ACTION_REJECT, "x");
  r.mutable_match()->set_tls("maybe");
  EXPECT_THAT(CompileError(r), StatusIs(absl::StatusCode::kInvalidArgument, "tls"));
  r = Action(sluice::v1::RULE_ACTION_REJECT, "x");
  r.mutable_match()->add_client_cidr("192.0.2.0/33");
  EXPECT_THAT(CompileError(r), StatusIs(absl::StatusCode::kInvalidArgument, "client_cidr"));
  r = Action(sluice::v1::RULE_ACTION_REJECT, "x");
  r.set_code(451);
  EXPECT_THAT(CompileError(r), StatusIs(absl::StatusCode::kInvalidArgument, "5xx"));
  r = Action(sluice::v1::RULE_ACTION_TEMPFAIL, "x");
  r.set_enhanced_code("5.7.1");
  EXPECT_THAT(CompileError(r), StatusIs(absl::StatusCode::kInvalidArgument, "enhanced_code"));
  r = Action(sluice::v1::RULE_ACTION_UNSPECIFIED, "x");
  EXPECT_THAT(CompileError(r), StatusIs(absl::StatusCode::kInvalidArgument, "action"));
  r = Action(sluice::v1::RULE_ACTION_ADD_HEADER, "x");
  r.set_header_name("Bad Name");
  EXPECT_THAT(CompileError(r), StatusIs(absl::StatusCode::kInvalidArgument, "header_name"));
}

TEST(RulesConfigTest, RulesFileThenInlineRulesThroughTheFactory) {
  char dir[] = "/tmp/sluice-rules-test-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string path = std::string(dir) + "/rules.yaml";
  {
    std::ofstream f(path);
    f << "rules:\n"
         "  - name: block-exe\n"
         "    match:\n"
         "      attachment_filename_pattern: '(?i)\\.exe$'\n"
         "    action: reject\n"
         "    text: Executables are not accepted\n";
  }
  sluice::v1::FilterConfig config;
  config.set_name("rules");
  config.mutable_rules()->set_file(path);
  sluice::v1::Rule inline_rule = Action(sluice::v1::RULE_ACTION_TEMPFAIL, "inline");
  *config.mutable_rules()->add_rules() = inline_rule;
  sluice::v1::FilterBridgeConfig bridge;
  auto factory = NewRulesFilterFactory();
  auto filter = factory->Create(config, FilterFactoryContext{bridge});
  ASSERT_THAT(filter, IsOk());
  auto* rules = static_cast<RulesFilter*>(filter->get());

  ContextHolder multipart(kMultipart);
  FilterOutcome out = rules->Evaluate(multipart.ctx());
  ASSERT_THAT(out, IsOk());
  EXPECT_EQ(out->reply.ToString(), "550 5.7.1 Executables are not accepted");
  ContextHolder plain(kPlain);
  out = rules->Evaluate(plain.ctx());
  ASSERT_THAT(out, IsOk());
  EXPECT_EQ(out->verdict, Verdict::kTempfail);  // the inline rule, after the file's

  {
    std::ofstream f(path);
    f << "rules:\n  - name: bad\n    match: {body_pattern: '[z-a]'}\n    action: reject\n";
  }
  EXPECT_THAT(factory->Create(config, FilterFactoryContext{bridge}),
              StatusIs(absl::StatusCode::kInvalidArgument, "rule 'bad' (#1): body_pattern"));
  {
    std::ofstream f(path);
    f << "rules:\n  - name: typo\n    mach: {}\n";
  }
  EXPECT_THAT(factory->Create(config, FilterFactoryContext{bridge}),
              StatusIs(absl::StatusCode::kInvalidArgument, "mach"));
  ::unlink(path.c_str());
  ::rmdir(dir);
}

TEST(RulesFilterTest, PassedDeadlineIsATimeout) {
  ContextHolder h(kPlain);
  h.deadline = Clock::now() - std::chrono::seconds(1);
  FilterOutcome out = Rules({Action(sluice::v1::RULE_ACTION_ACCEPT, "a")})->Evaluate(h.ctx());
  EXPECT_THAT(out, StatusIs(absl::StatusCode::kDeadlineExceeded));
}

}  // namespace
}  // namespace sluice::filter_bridge
