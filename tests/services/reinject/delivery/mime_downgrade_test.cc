// tests/services/reinject/delivery/mime_downgrade_test.cc -- 8BITMIME to 7BIT (RFC 6152 §3):
// 8-bit bodies become quoted-printable that decodes (by our own RFC 2045 §6.7 decoder here)
// to the very bytes queued, 7-bit parts and 7-bit messages stay byte for byte, composites
// are relabelled 7bit, a non-MIME message gets MIME-Version; 8-bit in headers, in message/*
// leaves, in encoded parts and in a preamble cannot be converted; no file is left behind.
#include "services/reinject/delivery/mime_downgrade.h"

#include <fcntl.h>

#include <gtest/gtest.h>
#include <unistd.h>

#include "lib/status/status_matchers.h"
#include "tests/services/reinject/testing/queue_test_support.h"

namespace sluice::reinject {
namespace {

using ::sluice::reinject::testing::ListDir;
using ::sluice::reinject::testing::TempDir;
using ::sluice::reinject::testing::WriteFile;
using ::sluice::testing::IsOk;

// RFC 2045 §6.7 quoted-printable decoding of a body with CRLF line ends: "=XX" is a byte,
// "=" at the end of a line a soft break; anything else malformed fails the test.
std::string DecodeQp(const std::string& in) {
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (static_cast<unsigned char>(c) >= 0x80) ADD_FAILURE() << "8-bit byte in quoted-printable at " << i;
    if (c != '=') {
      out.push_back(c);
      continue;
    }
    if (in.compare(i + 1, 2, "\r\n") == 0) {
      i += 2;  // soft line break
      continue;
    }
    auto hex = [](char h) -> int {
      if (h >= '0' && h <= '9') return h - '0';
      if (h >= 'A' && h <= 'F') return h - 'A' + 10;
      return -1;
    };
    if (i + 2 >= in.size() || hex(in[i + 1]) < 0 || hex(in[i + 2]) < 0) {
      ADD_FAILURE() << "bad quoted-printable escape at " << i << ": " << in.substr(i, 3);
      return out;
    }
    out.push_back(static_cast<char>(hex(in[i + 1]) * 16 + hex(in[i + 2])));
    i += 2;
  }
  return out;
}

// The body of the first part whose header block contains `header_line`, up to the CRLF that
// belongs to the next boundary "--<boundary>".
std::string PartBody(const std::string& message, const std::string& header_line, const std::string& boundary) {
  size_t h = message.find(header_line);
  if (h == std::string::npos) return "<no part with " + header_line + ">";
  size_t start = message.find("\r\n\r\n", h);
  if (start == std::string::npos) return "<no body>";
  start += 4;
  size_t end = message.find("\r\n--" + boundary, start);
  return message.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

std::string ReadFd(int fd) {
  std::string out;
  char buf[4096];
  off_t offset = 0;
  for (;;) {
    ssize_t n = ::pread(fd, buf, sizeof buf, offset);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
    offset += n;
  }
  return out;
}

void ExpectSevenBitCrlf(const std::string& s) {
  for (size_t i = 0; i < s.size(); ++i) {
    ASSERT_LT(static_cast<unsigned char>(s[i]), 0x80) << "8-bit byte at " << i;
    if (s[i] == '\n') {
      ASSERT_TRUE(i > 0 && s[i - 1] == '\r') << "bare LF at " << i;
    }
    if (s[i] == '\r') {
      ASSERT_TRUE(i + 1 < s.size() && s[i + 1] == '\n') << "bare CR at " << i;
    }
  }
  size_t start = 0;
  while (start < s.size()) {
    size_t end = s.find("\r\n", start);
    if (end == std::string::npos) end = s.size();
    EXPECT_LE(end - start, 998u) << "line too long at " << start;
    start = end + 2;
  }
}

const std::string kEightBitBody =
    "Gr\xC3\xBC\xC3\x9F"
    "e aus K\xC3\xB6ln = 100 %\r\n"
    ".a line starting with a dot\r\n"
    "trailing blanks \xC3\xA9   \r\n"
    "From the start of a line\r\n" +
    std::string(120, 'x') +
    "\xE2\x82\xAC\r\n"
    "\r\n"
    "last line without 8-bit\r\n";

const std::string kAsciiBody = "plain ascii = stays as it is\r\n";

std::string Multipart() {
  return "From: Alice <alice@example.org>\r\n"
         "To: bob@example.com\r\n"
         "Subject: 8-bit body\r\n"
         "MIME-Version: 1.0\r\n"
         "Content-Type: multipart/mixed; boundary=\"BB\"\r\n"
         "Content-Transfer-Encoding: 8bit\r\n"
         "\r\n"
         "This is a multi-part message in MIME format.\r\n"
         "--BB\r\n"
         "Content-Type: text/plain; charset=utf-8\r\n"
         "Content-Transfer-Encoding: 8bit\r\n"
         "\r\n" +
         kEightBitBody +
         "\r\n--BB\r\n"
         "Content-Type: text/plain; charset=us-ascii\r\n"
         "\r\n" +
         kAsciiBody + "\r\n--BB--\r\n";
}

class MimeDowngradeTest : public ::testing::Test {
 protected:
  absl::StatusOr<Downgrade> Convert(const std::string& content) {
    WriteFile(dir_ / "message", content);
    return DowngradeTo7Bit(::sluice::reinject::testing::ContentFile(dir_ / "message"), dir_.path());
  }

  TempDir dir_;
};

TEST_F(MimeDowngradeTest, EightBitTextBecomesQuotedPrintableThatDecodesToTheSameBytes) {
  auto d = Convert(Multipart());
  ASSERT_THAT(d, IsOk());
  ASSERT_EQ(d->outcome, DowngradeOutcome::kConverted) << d->reason;
  std::string out = ReadFd(d->copy.get());
  EXPECT_EQ(d->size_bytes, out.size());
  ExpectSevenBitCrlf(out);
  std::string qp = PartBody(out, "Content-Transfer-Encoding: quoted-printable\r\n", "BB");
  for (size_t start = 0; start < qp.size();) {  // RFC 2045 §6.7 (5): at most 76 characters
    size_t end = qp.find("\r\n", start);
    if (end == std::string::npos) end = qp.size();
    EXPECT_LE(end - start, 76u) << qp.substr(start, end - start);
    start = end + 2;
  }
  EXPECT_EQ(DecodeQp(qp), kEightBitBody) << qp;
  // The 7-bit part, the headers and the multipart's structure are as they were; the
  // multipart's own label follows what is inside it now.
  EXPECT_EQ(PartBody(out, "Content-Type: text/plain; charset=us-ascii\r\n", "BB"), kAsciiBody);
  EXPECT_EQ(out.rfind("From: Alice <alice@example.org>\r\nTo: bob@example.com\r\nSubject: 8-bit body\r\n", 0), 0u)
      << out;
  EXPECT_NE(out.find("Content-Type: multipart/mixed; boundary=\"BB\"\r\nContent-Transfer-Encoding: 7bit\r\n"),
            std::string::npos)
      << out;
  EXPECT_EQ(out.find("8bit"), std::string::npos) << out;
  EXPECT_NE(out.find("\r\n--BB--\r\n"), std::string::npos);
}

TEST_F(MimeDowngradeTest, SevenBitMessageIsLeftAlone) {
  auto d = Convert(std::string(::sluice::reinject::testing::kMessage));
  ASSERT_THAT(d, IsOk());
  EXPECT_EQ(d->outcome, DowngradeOutcome::kUnchanged);
  EXPECT_LT(d->copy.get(), 0);
}

TEST_F(MimeDowngradeTest, MessageWithoutMimeGetsMimeVersionAndQuotedPrintable) {
  const std::string body = "Caf\xC3\xA9 au lait\r\nsecond line\r\n";
  auto d = Convert("From: a@example.org\r\nTo: b@example.com\r\nSubject: no MIME\r\n\r\n" + body);
  ASSERT_THAT(d, IsOk());
  ASSERT_EQ(d->outcome, DowngradeOutcome::kConverted) << d->reason;
  std::string out = ReadFd(d->copy.get());
  ExpectSevenBitCrlf(out);
  size_t blank = out.find("\r\n\r\n");
  ASSERT_NE(blank, std::string::npos);
  std::string headers = out.substr(0, blank + 2);
  EXPECT_NE(headers.find("MIME-Version: 1.0\r\n"), std::string::npos) << headers;
  EXPECT_NE(headers.find("Content-Transfer-Encoding: quoted-printable\r\n"), std::string::npos) << headers;
  EXPECT_EQ(DecodeQp(out.substr(blank + 4)), body);
}

TEST_F(MimeDowngradeTest, AttachedMessageIsConvertedInsideAndRelabelled) {
  const std::string inner_body = "Inner \xC3\xA9t\xC3\xA9\r\n";
  const std::string binary = std::string("\x80\x81\xFE", 3) + "abc\r\n";
  auto d = Convert(
      "From: a@example.org\r\nMIME-Version: 1.0\r\n"
      "Content-Type: multipart/mixed; boundary=\"XX\"\r\n\r\n"
      "--XX\r\n"
      "Content-Type: message/rfc822\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
      "From: x@example.net\r\nSubject: inner\r\nMIME-Version: 1.0\r\n"
      "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" +
      inner_body +
      "\r\n--XX\r\n"
      "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n" +
      binary + "\r\n--XX--\r\n");
  ASSERT_THAT(d, IsOk());
  ASSERT_EQ(d->outcome, DowngradeOutcome::kConverted) << d->reason;
  std::string out = ReadFd(d->copy.get());
  ExpectSevenBitCrlf(out);
  EXPECT_NE(out.find("Content-Type: message/rfc822\r\nContent-Transfer-Encoding: 7bit\r\n"), std::string::npos) << out;
  EXPECT_EQ(DecodeQp(PartBody(out, "Content-Type: text/plain; charset=utf-8\r\n", "XX")), inner_body) << out;
  EXPECT_EQ(DecodeQp(PartBody(out, "Content-Type: application/octet-stream\r\n", "XX")), binary) << out;
}

TEST_F(MimeDowngradeTest, EightBitHeaderCannotBeConverted) {
  auto d = Convert(
      "From: a@example.org\r\nSubject: caf\xC3\xA9\r\nMIME-Version: 1.0\r\n"
      "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
      "caf\xC3\xA9\r\n");
  ASSERT_THAT(d, IsOk());
  EXPECT_EQ(d->outcome, DowngradeOutcome::kImpossible);
  EXPECT_TRUE(d->in_header);
  EXPECT_NE(d->reason.find("Subject"), std::string::npos) << d->reason;
  EXPECT_LT(d->copy.get(), 0);
}

TEST_F(MimeDowngradeTest, EightBitInAMimePartHeaderCannotBeConverted) {
  auto d = Convert(
      "From: a@example.org\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"B\"\r\n\r\n"
      "--B\r\nContent-Type: text/plain; name=\"r\xC3\xA9sum\xC3\xA9.txt\"\r\n\r\nplain\r\n--B--\r\n");
  ASSERT_THAT(d, IsOk());
  EXPECT_EQ(d->outcome, DowngradeOutcome::kImpossible);
  EXPECT_TRUE(d->in_header);
}

TEST_F(MimeDowngradeTest, EightBitInAMessageLeafOtherThanRfc822CannotBeConverted) {
  auto d = Convert(
      "From: a@example.org\r\nMIME-Version: 1.0\r\n"
      "Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n"
      "--B\r\nContent-Type: text/plain\r\n\r\nreport\r\n"
      "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
      "Reporting-MTA: dns; mx.example.org\r\n\r\nFinal-Recipient: rfc822; j\xC3\xBCrgen@example.com\r\n"
      "Action: failed\r\nStatus: 5.1.1\r\n\r\n--B--\r\n");
  ASSERT_THAT(d, IsOk());
  EXPECT_EQ(d->outcome, DowngradeOutcome::kImpossible);
  EXPECT_FALSE(d->in_header);
  EXPECT_NE(d->reason.find("message/delivery-status"), std::string::npos) << d->reason;
}

TEST_F(MimeDowngradeTest, EightBitInAnEncodedPartOrThePreambleCannotBeConverted) {
  auto encoded = Convert(
      "From: a@example.org\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n"
      "Content-Transfer-Encoding: base64\r\n\r\naGVsbG8\xC3\xA9\r\n");
  ASSERT_THAT(encoded, IsOk());
  EXPECT_EQ(encoded->outcome, DowngradeOutcome::kImpossible);
  auto preamble = Convert(
      "From: a@example.org\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"B\"\r\n"
      "\r\nPr\xC3\xA9"
      "ambule\r\n--B\r\nContent-Type: text/plain\r\n\r\nplain\r\n--B--\r\n");
  ASSERT_THAT(preamble, IsOk());
  EXPECT_EQ(preamble->outcome, DowngradeOutcome::kImpossible);
}

TEST_F(MimeDowngradeTest, NoFileIsLeftBehindAndTheQueueFileIsUntouched) {
  const std::string original = Multipart();
  {
    auto d = Convert(original);
    ASSERT_THAT(d, IsOk());
    ASSERT_EQ(d->outcome, DowngradeOutcome::kConverted);
    EXPECT_EQ(ListDir(dir_.path()), std::vector<std::string>{"message"});  // the copy has no name
  }
  EXPECT_EQ(ListDir(dir_.path()), std::vector<std::string>{"message"});
  EXPECT_EQ(::sluice::reinject::testing::ReadFile(dir_ / "message"), original);
}

TEST_F(MimeDowngradeTest, UnreadableQueueContentIsAnError) {
  WriteFile(dir_ / "short", "Subject: x\r\n\r\nplain so far");  // the rest cannot be read
  MessageContent cut(std::make_shared<SharedFd>(::open((dir_ / "short").c_str(), O_RDONLY)), 0, 100000);
  auto d = DowngradeTo7Bit(cut, dir_.path());
  EXPECT_FALSE(d.ok());
}

}  // namespace
}  // namespace sluice::reinject
