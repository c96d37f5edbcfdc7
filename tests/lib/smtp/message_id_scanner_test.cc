// tests/lib/smtp/message_id_scanner_test.cc
//
// The Message-ID of the log lines: the first Message-ID field of the header, unfolded and
// trimmed, any case of the name; nothing from the body; cut at 998 bytes. Every input is
// also fed split at every byte boundary and byte by byte, with the same result.
//
// Never: checks a case only in one piece.
#include "lib/smtp/message_id_scanner.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace sluice::smtp {
namespace {

std::string ScanChunks(const std::vector<std::string_view>& chunks) {
  MessageIdScanner s;
  for (std::string_view c : chunks) s.Feed(c);
  s.Finish();
  return s.message_id();
}

std::string Scan(std::string_view in) {
  const std::string whole = ScanChunks({in});
  for (size_t i = 0; i <= in.size(); ++i) {
    EXPECT_EQ(ScanChunks({in.substr(0, i), in.substr(i)}), whole) << "split at " << i;
  }
  std::vector<std::string_view> bytes;
  for (size_t i = 0; i < in.size(); ++i) bytes.push_back(in.substr(i, 1));
  EXPECT_EQ(ScanChunks(bytes), whole) << "byte by byte";
  return whole;
}

TEST(MessageIdScannerTest, FindsTheFieldAmongOthers) {
  EXPECT_EQ(Scan("From: a@example.com\r\nMessage-ID: <1234@example.com>\r\nSubject: hi\r\n\r\nbody\r\n"),
            "<1234@example.com>");
}

TEST(MessageIdScannerTest, NameInAnyCaseAndValueTrimmed) {
  EXPECT_EQ(Scan("message-id:\t <abc@x>  \r\n\r\n"), "<abc@x>");
  EXPECT_EQ(Scan("MESSAGE-ID:<abc@x>\r\n\r\n"), "<abc@x>");
}

TEST(MessageIdScannerTest, UnfoldsAFoldedValue) {
  EXPECT_EQ(Scan("Message-ID:\r\n <folded@example.com>\r\nX: y\r\n\r\n"), "<folded@example.com>");
}

TEST(MessageIdScannerTest, TheFirstFieldWins) {
  EXPECT_EQ(Scan("Message-ID: <first@x>\r\nMessage-ID: <second@x>\r\n\r\n"), "<first@x>");
}

TEST(MessageIdScannerTest, NeverLooksAtTheBody) {
  EXPECT_EQ(Scan("Subject: s\r\n\r\nMessage-ID: <in-body@x>\r\n"), "");
  EXPECT_EQ(Scan("\r\nMessage-ID: <after-empty-header@x>\r\n"), "");
}

TEST(MessageIdScannerTest, OtherFieldsThatStartAlikeAreNotIt) {
  EXPECT_EQ(Scan("Message-IDs: <no@x>\r\nX-Message-ID: <no@x>\r\nResent-Message-ID: <no@x>\r\n\r\n"), "");
}

TEST(MessageIdScannerTest, AMessageThatIsAllHeaderEndsInItsLastField) {
  EXPECT_EQ(Scan("Subject: s\r\nMessage-ID: <last@x>\r\n"), "<last@x>");
}

TEST(MessageIdScannerTest, AFoldOfAnotherFieldIsNotAField) {
  EXPECT_EQ(Scan("Subject: a\r\n Message-ID: <no@x>\r\n\r\n"), "");
}

TEST(MessageIdScannerTest, ALongIdIsCut) {
  std::string id = "<" + std::string(2000, 'a') + "@x>";
  MessageIdScanner s;
  s.Feed("Message-ID: " + id + "\r\n\r\n");
  EXPECT_LE(s.message_id().size(), MessageIdScanner::kMaxBytes);
  EXPECT_GE(s.message_id().size(), MessageIdScanner::kMaxBytes - 1);  // less the space after the colon
  EXPECT_EQ(s.message_id().substr(0, 3), "<aa");
  EXPECT_TRUE(s.header_done());
}

}  // namespace
}  // namespace sluice::smtp
