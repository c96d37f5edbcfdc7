// tools/sluicectl/record_format.h
//
// One record (a session, a queue entry) for people: every field that is set, one per line,
// nested fields by dotted path (current.recipients[0].address), timestamps in RFC 3339.
// Written by reflection so a field added to the proto shows up without touching sluicectl.
//
// Never: prints fields at their zero value (they say nothing and hide the ones that do).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <google/protobuf/message.h>

namespace sluice::ctl {

// (path, value) pairs in field-number order.
std::vector<std::pair<std::string, std::string>> RecordFields(const google::protobuf::Message& message);

// The pairs as "path:  value" lines, the values aligned.
std::string RenderRecord(const google::protobuf::Message& message);

}  // namespace sluice::ctl
