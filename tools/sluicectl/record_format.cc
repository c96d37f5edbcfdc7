// tools/sluicectl/record_format.cc -- see record_format.h.
#include "tools/sluicectl/record_format.h"

#include <algorithm>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/timestamp.pb.h>
#include <google/protobuf/util/time_util.h>

#include "absl/strings/str_cat.h"
#include "tools/sluicectl/table.h"

namespace sluice::ctl {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

std::string ScalarText(const Message& m, const FieldDescriptor* f, int index) {
  const Reflection* r = m.GetReflection();
  const bool rep = f->is_repeated();
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      return absl::StrCat(rep ? r->GetRepeatedInt32(m, f, index) : r->GetInt32(m, f));
    case FieldDescriptor::CPPTYPE_INT64:
      return absl::StrCat(rep ? r->GetRepeatedInt64(m, f, index) : r->GetInt64(m, f));
    case FieldDescriptor::CPPTYPE_UINT32:
      return absl::StrCat(rep ? r->GetRepeatedUInt32(m, f, index) : r->GetUInt32(m, f));
    case FieldDescriptor::CPPTYPE_UINT64:
      return absl::StrCat(rep ? r->GetRepeatedUInt64(m, f, index) : r->GetUInt64(m, f));
    case FieldDescriptor::CPPTYPE_DOUBLE:
      return absl::StrCat(rep ? r->GetRepeatedDouble(m, f, index) : r->GetDouble(m, f));
    case FieldDescriptor::CPPTYPE_FLOAT:
      return absl::StrCat(rep ? r->GetRepeatedFloat(m, f, index) : r->GetFloat(m, f));
    case FieldDescriptor::CPPTYPE_BOOL:
      return (rep ? r->GetRepeatedBool(m, f, index) : r->GetBool(m, f)) ? "true" : "false";
    case FieldDescriptor::CPPTYPE_ENUM:
      return (rep ? r->GetRepeatedEnum(m, f, index) : r->GetEnum(m, f))->name();
    case FieldDescriptor::CPPTYPE_STRING:
      return rep ? r->GetRepeatedString(m, f, index) : r->GetString(m, f);
    case FieldDescriptor::CPPTYPE_MESSAGE:
      break;
  }
  return "";
}

void Collect(const Message& m, const std::string& prefix, std::vector<std::pair<std::string, std::string>>& out) {
  if (m.GetDescriptor()->full_name() == google::protobuf::Timestamp::descriptor()->full_name()) {
    google::protobuf::Timestamp ts;
    ts.CopyFrom(m);  // by reflection if `m` is not the generated class
    out.emplace_back(prefix, google::protobuf::util::TimeUtil::ToString(ts));
    return;
  }
  std::vector<const FieldDescriptor*> fields;
  m.GetReflection()->ListFields(m, &fields);  // set fields only, by number
  for (const FieldDescriptor* f : fields) {
    std::string path = prefix.empty() ? f->name() : absl::StrCat(prefix, ".", f->name());
    const Reflection* r = m.GetReflection();
    if (f->is_repeated()) {
      for (int i = 0; i < r->FieldSize(m, f); ++i) {
        std::string item = absl::StrCat(path, "[", i, "]");
        if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
          Collect(r->GetRepeatedMessage(m, f, i), item, out);
        } else {
          out.emplace_back(item, ScalarText(m, f, i));
        }
      }
    } else if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      Collect(r->GetMessage(m, f), path, out);
    } else {
      out.emplace_back(path, ScalarText(m, f, 0));
    }
  }
}

}  // namespace

std::vector<std::pair<std::string, std::string>> RecordFields(const Message& message) {
  std::vector<std::pair<std::string, std::string>> out;
  Collect(message, "", out);
  return out;
}

std::string RenderRecord(const Message& message) {
  auto fields = RecordFields(message);
  size_t width = 0;
  for (const auto& [path, value] : fields) width = std::max(width, path.size() + 1);
  std::string out;
  for (const auto& [path, value] : fields) {
    absl::StrAppend(&out, path, ":", std::string(width - path.size() + 1, ' '), SanitizeCell(value), "\n");
  }
  return out;
}

}  // namespace sluice::ctl
