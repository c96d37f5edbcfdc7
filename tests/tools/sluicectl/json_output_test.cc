// tests/tools/sluicectl/json_output_test.cc
//
// The json output format: the envelope parses as JSON (read back with protobuf's own JSON
// parser), strings are escaped, and messages carry the proto's field names with zeros present.
//
// Never: compares whole documents where a shape check says what matters.
#include "tools/sluicectl/json_output.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "sluice/v1/admin.pb.h"
#include "sluice/v1/session.pb.h"
#include "tools/sluicectl/report.h"

namespace sluice::ctl {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

google::protobuf::Value ParseJson(const std::string& json) {
  google::protobuf::Value value;
  auto status = google::protobuf::util::JsonStringToMessage(json, &value);
  EXPECT_TRUE(status.ok()) << status.ToString() << "\n" << json;
  return value;
}

TEST(JsonOutputTest, WriterBuildsNestedDocuments) {
  JsonWriter w;
  w.BeginObject().Key("a").Int(-3).Key("b").BeginArray().String("x").Bool(true).BeginObject().EndObject().EndArray();
  w.Key("c").StringArray({"p", "q"}).Key("d").Raw("{\"k\":1}").EndObject();
  EXPECT_EQ(w.Finish(), "{\"a\":-3,\"b\":[\"x\",true,{}],\"c\":[\"p\",\"q\"],\"d\":{\"k\":1}}\n");
}

TEST(JsonOutputTest, EscapesStrings) {
  std::string out;
  AppendJsonString(out, "q\"b\\n\nt\tc\x01 \xC3\xA9");
  EXPECT_EQ(out, "\"q\\\"b\\\\n\\nt\\tc\\u0001 \xC3\xA9\"");
  EXPECT_EQ(ParseJson(out).string_value(), "q\"b\\n\nt\tc\x01 \xC3\xA9");
}

TEST(JsonOutputTest, MessagesUseProtoFieldNamesAndPrintZeros) {
  sluice::v1::SessionMetadata s;
  s.set_session_id("F00D");
  s.set_client_address("192.0.2.1");
  std::string json = MessageJson(s);
  EXPECT_THAT(json, HasSubstr("\"session_id\":\"F00D\""));
  EXPECT_THAT(json, HasSubstr("\"client_port\":0"));  // zero present, for scripts
  EXPECT_THAT(json, Not(HasSubstr("sessionId")));
  EXPECT_EQ(ParseJson(json).struct_value().fields().at("client_address").string_value(), "192.0.2.1");
}

TEST(JsonOutputTest, ReplyDocumentHasResultsAndErrorsByReplica) {
  std::vector<Reply<sluice::v1::StageStatus>> replies(2);
  replies[0].target.label = "10.0.0.5:9101";
  replies[0].target.stage = "frontend";
  replies[0].response.set_stage("frontend");
  replies[0].response.set_sessions_active(3);
  replies[0].response.set_queue_bytes(1ull << 40);
  replies[1].target.label = "10.0.0.6:9101";
  replies[1].status = grpc::Status(grpc::StatusCode::UNAVAILABLE, "connection \"refused\"");

  auto doc = ParseJson(ReplyDocument("status", replies)).struct_value().fields();
  EXPECT_EQ(doc.at("command").string_value(), "status");
  const auto& results = doc.at("results").list_value().values();
  ASSERT_EQ(results.size(), 1);
  const auto& first = results[0].struct_value().fields();
  EXPECT_EQ(first.at("replica").string_value(), "10.0.0.5:9101");
  EXPECT_EQ(first.at("stage").string_value(), "frontend");
  const auto& response = first.at("response").struct_value().fields();
  EXPECT_EQ(response.at("sessions_active").number_value(), 3);
  EXPECT_EQ(response.at("queue_bytes").string_value(), "1099511627776");  // proto JSON: 64-bit as string
  EXPECT_EQ(response.at("state").string_value(), "SERVING_STATE_UNSPECIFIED");

  const auto& errors = doc.at("errors").list_value().values();
  ASSERT_EQ(errors.size(), 1);
  const auto& error = errors[0].struct_value().fields();
  EXPECT_EQ(error.at("replica").string_value(), "10.0.0.6:9101");
  EXPECT_EQ(error.count("stage"), 0u);  // unknown for an --admin address
  EXPECT_EQ(error.at("code").string_value(), "UNAVAILABLE");
  EXPECT_EQ(error.at("message").string_value(), "connection \"refused\"");
}

TEST(JsonOutputTest, NotFoundCanBeAnAnswerRatherThanAnError) {
  std::vector<Reply<sluice::v1::SessionMetadata>> replies(1);
  replies[0].target.label = "a:1";
  replies[0].status = grpc::Status(grpc::StatusCode::NOT_FOUND, "not here");
  JsonWriter w;
  w.BeginObject();
  WriteJsonErrors(w, replies, /*not_found_is_answer=*/true);
  w.EndObject();
  EXPECT_EQ(w.Finish(), "{\"errors\":[]}\n");
}

}  // namespace
}  // namespace sluice::ctl
