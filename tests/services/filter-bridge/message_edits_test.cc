// tests/services/filter-bridge/message_edits_test.cc
//
// An unedited message comes out byte for byte (memory and file spools); each header edit
// does exactly what it says and touches no other field; a replacement body replaces the
// body; filter-supplied values cannot inject header lines.
#include "services/filter-bridge/message/message_edits.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "lib/status/status_matchers.h"

namespace sluice::filter_bridge {
namespace {

using ::sluice::testing::IsOk;

const char kMessage[] =
    "Received: from a (a [192.0.2.1])\r\n"
    "\tby b; Tue, 1 Jan 2030 00:00:00 +0000\r\n"
    "From: alice@example.com\r\n"
    "To: bob@example.net\r\n"
    "X-Tag: first\r\n"
    "Subject:   odd   spacing  \r\n"
    "X-Tag: second\r\n"
    "\r\n"
    "Body line 1\r\n"
    ".leading dot already unstuffed\r\n";

std::unique_ptr<MessageSpool> Spool(std::string_view content, uint64_t memory_limit = 1 << 20) {
  auto spool = std::make_unique<MessageSpool>(memory_limit, "");
  EXPECT_THAT(spool->Append(content), IsOk());
  EXPECT_THAT(spool->Finish(), IsOk());
  return spool;
}

std::string Write(const MessageSpool& spool, const Edits& edits) {
  std::string out;
  EXPECT_THAT(WriteMessage(spool, edits, [&](std::string_view c) {
    out.append(c);
    return absl::OkStatus();
  }), IsOk());
  EXPECT_EQ(out.size(), EditedSize(spool, edits));
  return out;
}

std::string WithEdit(const HeaderEdit& edit) {
  auto spool = Spool(kMessage);
  Edits edits;
  edits.headers.push_back(edit);
  EXPECT_THAT(ValidateHeaderEdit(edit), IsOk());
  return Write(*spool, edits);
}

// kMessage with `from` replaced by `to` (once).
std::string Replaced(std::string_view from, std::string_view to) {
  std::string m = kMessage;
  size_t at = m.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  m.replace(at, from.size(), to);
  return m;
}

TEST(MessageEditsTest, UneditedMessageIsByteExact) {
  EXPECT_EQ(Write(*Spool(kMessage), Edits{}), kMessage);
  EXPECT_EQ(Write(*Spool(kMessage, 16), Edits{}), kMessage);
  const std::string odd = "no header at all\r\n\r\n\r\n";
  EXPECT_EQ(Write(*Spool(odd), Edits{}), odd);
}

TEST(MessageEditsTest, HeaderEditKeepsEveryOtherByte) {
  // A no-op-looking edit forces the edited path; everything but the new field is unchanged.
  std::string out = WithEdit(HeaderEdit::Add("X-New", "v"));
  EXPECT_EQ(out, Replaced("\r\n\r\nBody", "\r\nX-New: v\r\n\r\nBody"));
}

TEST(MessageEditsTest, PrependPutsTheFieldAtTheTop) {
  EXPECT_EQ(WithEdit(HeaderEdit::Prepend("X-Top", "1")), std::string("X-Top: 1\r\n") + kMessage);
}

TEST(MessageEditsTest, InsertAtIndex) {
  EXPECT_EQ(WithEdit(HeaderEdit::Insert(2, "X-Ins", "2")),
            Replaced("To: bob", "X-Ins: 2\r\nTo: bob"));
  EXPECT_EQ(WithEdit(HeaderEdit::Insert(0, "X-Ins", "0")), std::string("X-Ins: 0\r\n") + kMessage);
  EXPECT_EQ(WithEdit(HeaderEdit::Insert(99, "X-Ins", "end")),
            Replaced("\r\n\r\nBody", "\r\nX-Ins: end\r\n\r\nBody"));
}

TEST(MessageEditsTest, ChangeTheNthOccurrence) {
  EXPECT_EQ(WithEdit(HeaderEdit::Change(2, "x-tag", "changed")),
            Replaced("X-Tag: second", "x-tag: changed"));
  EXPECT_EQ(WithEdit(HeaderEdit::Change(0, "X-Tag", "zero is first")),
            Replaced("X-Tag: first", "X-Tag: zero is first"));
  // Changing a field that does not exist appends it (Sendmail/Postfix behaviour).
  EXPECT_EQ(WithEdit(HeaderEdit::Change(3, "X-Tag", "third")),
            Replaced("\r\n\r\nBody", "\r\nX-Tag: third\r\n\r\nBody"));
}

TEST(MessageEditsTest, DeleteTheNthOccurrence) {
  EXPECT_EQ(WithEdit(HeaderEdit::Delete(1, "X-Tag")), Replaced("X-Tag: first\r\n", ""));
  EXPECT_EQ(WithEdit(HeaderEdit::Delete(5, "X-Tag")), kMessage);  // edited path, nothing removed
}

TEST(MessageEditsTest, RemoveAllAndReplaceAll) {
  std::string removed = Replaced("X-Tag: first\r\n", "");
  removed.replace(removed.find("X-Tag: second\r\n"), 15, "");
  EXPECT_EQ(WithEdit(HeaderEdit::RemoveAll("X-TAG")), removed);

  std::string replaced = Replaced("X-Tag: first", "X-Tag: only");
  replaced.replace(replaced.find("X-Tag: second\r\n"), 15, "");
  EXPECT_EQ(WithEdit(HeaderEdit::ReplaceAll("X-Tag", "only")), replaced);
  EXPECT_EQ(WithEdit(HeaderEdit::ReplaceAll("X-Absent", "added")),
            Replaced("\r\n\r\nBody", "\r\nX-Absent: added\r\n\r\nBody"));
}

TEST(MessageEditsTest, EditsApplyInOrder) {
  auto spool = Spool(kMessage);
  Edits edits;
  edits.headers = {HeaderEdit::Add("X-A", "1"), HeaderEdit::Change(1, "X-A", "2"),
                   HeaderEdit::Prepend("X-B", "3")};
  std::vector<HeaderField> fields = EditedHeaders(*spool, edits);
  ASSERT_EQ(fields.size(), 8u);
  EXPECT_EQ(fields.front().raw(), "X-B: 3\r\n");
  EXPECT_EQ(fields.back().raw(), "X-A: 2\r\n");
}

TEST(MessageEditsTest, ReplacementBody) {
  auto spool = Spool(kMessage);
  auto body = MessageSpool::ForBody(SpoolOptions{});
  ASSERT_THAT(body->Append("new body\r\n"), IsOk());
  ASSERT_THAT(body->Finish(), IsOk());
  Edits edits;
  edits.body = std::move(body);
  std::string expected = kMessage;
  expected = expected.substr(0, expected.find("\r\n\r\n") + 4) + "new body\r\n";
  EXPECT_EQ(Write(*spool, edits), expected);
}

TEST(MessageEditsTest, ReplacementBodyAddsTheSeparatorWhenTheOriginalHadNone) {
  auto spool = Spool("A: 1\r\n");
  auto body = MessageSpool::ForBody(SpoolOptions{});
  ASSERT_THAT(body->Append("b\r\n"), IsOk());
  ASSERT_THAT(body->Finish(), IsOk());
  Edits edits;
  edits.body = std::move(body);
  EXPECT_EQ(Write(*spool, edits), "A: 1\r\n\r\nb\r\n");
}

TEST(MessageEditsTest, LargeMessageFromFileWithEdits) {
  std::string m = "Subject: big\r\n\r\n";
  for (int i = 0; i < 50000; ++i) m += "line " + std::to_string(i) + "\r\n";
  auto spool = Spool(m, 1000);
  ASSERT_TRUE(spool->on_disk());
  Edits edits;
  edits.headers.push_back(HeaderEdit::Prepend("X-P", "p"));
  size_t chunks = 0;
  std::string out;
  ASSERT_THAT(WriteMessage(*spool, edits, [&](std::string_view c) {
    EXPECT_LE(c.size(), 65536u);
    ++chunks;
    out.append(c);
    return absl::OkStatus();
  }), IsOk());
  EXPECT_EQ(out, "X-P: p\r\n" + m);
  EXPECT_GT(chunks, 5u);
}

TEST(MessageEditsTest, SinkErrorStopsTheWrite) {
  auto spool = Spool(kMessage);
  int calls = 0;
  absl::Status s = WriteMessage(*spool, Edits{}, [&](std::string_view) {
    ++calls;
    return absl::UnavailableError("downstream gone");
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(calls, 1);
}

TEST(MessageEditsTest, ValuesCannotInjectFields) {
  EXPECT_EQ(MakeRawValue("a\r\nInjected: x", true), " a Injected: x");
  EXPECT_EQ(MakeRawValue("a\n\tfolded", true), " a\r\n\tfolded");
  EXPECT_EQ(MakeRawValue("a\r\n\r\nbody", true), " a  body");
  EXPECT_EQ(MakeRawValue("trailing\r\n", true), " trailing");
  EXPECT_EQ(MakeRawValue(" own space", true), " own space");
  EXPECT_EQ(MakeRawValue("nul\0x", true), " nul");  // C string ends at NUL
  EXPECT_EQ(MakeRawValue(std::string_view("nul\0x", 5), false), "nul x");

  HeaderEdit bad = HeaderEdit::Add("X-Ok", "v");
  bad.raw_value = " v\r\nInjected: yes";
  EXPECT_FALSE(ValidateHeaderEdit(bad).ok());
  bad.raw_value = " v\nx";
  EXPECT_FALSE(ValidateHeaderEdit(bad).ok());
  EXPECT_FALSE(ValidateHeaderEdit(HeaderEdit::Add("Bad Name", "v")).ok());
  EXPECT_THAT(ValidateHeaderEdit(HeaderEdit::Add("X-Ok", "v\n\tfold")), IsOk());
}

}  // namespace
}  // namespace sluice::filter_bridge
