// tools/sluicectl/json_output.h
//
// The json output format, for scripts: one compact JSON document per run. Every proto message
// in it is printed by protobuf's own JSON printer (MessageToJsonString, proto field names,
// zero values included), so a script reads the same names as the .proto; JsonWriter only
// builds the envelope around them (which replica answered what, which ones failed).
//
// Never: prints a message by hand; emits invalid JSON (strings are escaped, nesting checked).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <google/protobuf/message.h>

namespace sluice::ctl {

// The message as JSON with the proto's field names and zero values present.
std::string MessageJson(const google::protobuf::Message& message);

// A minimal streaming writer for the envelope. Keys and values alternate inside objects.
class JsonWriter {
 public:
  JsonWriter& BeginObject();
  JsonWriter& EndObject();
  JsonWriter& BeginArray();
  JsonWriter& EndArray();
  JsonWriter& Key(std::string_view key);
  JsonWriter& String(std::string_view value);
  JsonWriter& Int(int64_t value);
  JsonWriter& Bool(bool value);
  JsonWriter& Raw(std::string_view json);  // an already valid JSON value
  JsonWriter& Message(const google::protobuf::Message& message) { return Raw(MessageJson(message)); }
  JsonWriter& StringArray(const std::vector<std::string>& values);

  // The document followed by '\n'. Asserts every object and array was closed.
  std::string Finish();

 private:
  void BeforeValue();
  std::string out_;
  // One entry per open object/array: has it a member yet.
  std::vector<bool> has_member_;
  bool after_key_ = false;
};

void AppendJsonString(std::string& out, std::string_view value);

}  // namespace sluice::ctl
