// tools/sluicectl/record_format.cc -- see record_format.h.
#include "tools/sluicectl/record_format.h"

#include <algorithm>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/timestamp.pb.h>
#include <google/protobuf/util/time_util.h>

#include "absl/strings/str_cat.h"
#include "lib/control/field_path.h"
#include "tools/sluicectl/table.h"

namespace sluice::ctl {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

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
    if (f->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) {
      // The stages' own text form: enums by short name ("deferred"), lists comma-separated.
      out.emplace_back(path, sluice::control::FieldValueToString(m, f));
    } else if (f->is_repeated()) {
      for (int i = 0; i < r->FieldSize(m, f); ++i) Collect(r->GetRepeatedMessage(m, f, i), absl::StrCat(path, "[", i, "]"), out);
    } else {
      Collect(r->GetMessage(m, f), path, out);
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
