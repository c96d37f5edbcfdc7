// tests/tools/sluicectl/record_format_test.cc
//
// One record for people: set fields only, nested and repeated fields by path, timestamps
// in RFC 3339, values aligned and escaped.
//
// Never: depends on fields it did not set.
#include "tools/sluicectl/record_format.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "sluice/v1/session.pb.h"
#include "tools/sluicectl/value_format.h"

namespace sluice::ctl {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;

TEST(RecordFormatTest, ListsSetFieldsByPath) {
  sluice::v1::SessionMetadata s;
  s.set_session_id("F00D");
  s.set_client_port(25);
  s.mutable_connected_at()->set_seconds(1700000000);
  s.mutable_current()->set_mail_from("bob@example.org");
  s.mutable_current()->add_recipients()->set_address("a@example.net");
  s.mutable_current()->add_recipients()->set_address("b@example.net");
  EXPECT_THAT(RecordFields(s), ElementsAre(Pair("session_id", "F00D"), Pair("client_port", "25"),
                                           Pair("connected_at", "2023-11-14T22:13:20Z"),
                                           Pair("current.mail_from", "bob@example.org"),
                                           Pair("current.recipients[0].address", "a@example.net"),
                                           Pair("current.recipients[1].address", "b@example.net")));
}

TEST(RecordFormatTest, RendersAlignedAndEscaped) {
  sluice::v1::SessionMetadata s;
  s.set_session_id("F00D");
  s.set_helo("evil\r\nX");
  EXPECT_EQ(RenderRecord(s), "session_id:  F00D\nhelo:        evil\\x0D\\nX\n");
}

TEST(ValueFormatTest, AgesSizesAndLists) {
  google::protobuf::Timestamp ts;
  EXPECT_EQ(FormatAge(ts, absl::FromUnixSeconds(100)), "-");
  ts.set_seconds(1000);
  EXPECT_EQ(FormatAge(ts, absl::FromUnixSeconds(1100)), "1m40s");
  EXPECT_EQ(FormatAge(ts, absl::FromUnixSeconds(900)), "0s");
  EXPECT_EQ(FormatBytes(999), "999 B");
  EXPECT_EQ(FormatBytes(1536), "1.5 KiB");
  EXPECT_EQ(FormatBytes(10240000), "9.8 MiB");
  EXPECT_EQ(FormatShortList({}, 2), "-");
  EXPECT_EQ(FormatShortList({"a", "b"}, 2), "a,b");
  EXPECT_EQ(FormatShortList({"a", "b", "c", "d"}, 2), "a,b,+2");
}

}  // namespace
}  // namespace sluice::ctl
