// tools/sluicectl/limits_update.cc -- see limits_update.h.
#include "tools/sluicectl/limits_update.h"

#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "lib/net/cidr.h"
#include "sluice/v1/options.pb.h"
#include "tools/sluicectl/duration.h"

namespace sluice::ctl {
namespace {

using google::protobuf::FieldDescriptor;
using sluice::v1::Limits;

// Every integer type's values fit in [INT64_MIN, UINT64_MAX]; __extension__ keeps -Wpedantic quiet.
__extension__ typedef __int128 Wide;

absl::Status Bad(const FieldDescriptor* f, const std::string& value, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("limit ", f->name(), "=", value, ": ", why));
}

bool IsDuration(const FieldDescriptor* f) { return f->options().GetExtension(sluice::v1::duration); }

// What a plain number means for a duration field: the unit in its name.
absl::Duration FieldUnit(const FieldDescriptor* f) {
  if (absl::EndsWith(f->name(), "_ms") || absl::EndsWith(f->name(), "_milliseconds")) return absl::Milliseconds(1);
  if (absl::EndsWith(f->name(), "_minutes")) return absl::Minutes(1);
  return absl::Seconds(1);
}

// An integer field's value, checked against its type and its bounds options.
absl::StatusOr<Wide> ParseInteger(const FieldDescriptor* f, const std::string& text) {
  Wide value = 0;
  if (IsDuration(f)) {
    absl::Duration unit = FieldUnit(f);
    auto d = ParseDuration(text, unit);
    if (!d.ok()) return Bad(f, text, d.status().message());
    absl::Duration rest;
    int64_t n = absl::IDivDuration(*d, unit, &rest);
    if (rest != absl::ZeroDuration()) return Bad(f, text, "not a whole number of the field's unit");
    value = n;
  } else {
    int64_t signed_value = 0;
    uint64_t unsigned_value = 0;
    if (absl::SimpleAtoi(text, &unsigned_value)) {
      value = unsigned_value;
    } else if (absl::SimpleAtoi(text, &signed_value)) {
      value = signed_value;
    } else {
      return Bad(f, text, "not an integer");
    }
  }
  Wide lo = 0, hi = 0;
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32: lo = INT32_MIN; hi = INT32_MAX; break;
    case FieldDescriptor::CPPTYPE_INT64: lo = INT64_MIN; hi = INT64_MAX; break;
    case FieldDescriptor::CPPTYPE_UINT32: lo = 0; hi = UINT32_MAX; break;
    default: lo = 0; hi = UINT64_MAX; break;
  }
  if (value < lo || value > hi) return Bad(f, text, "out of range for its type");
  const auto& options = f->options();
  if (options.HasExtension(sluice::v1::min_value) && value < options.GetExtension(sluice::v1::min_value)) {
    return Bad(f, text, absl::StrCat("below the minimum ", options.GetExtension(sluice::v1::min_value)));
  }
  if (options.HasExtension(sluice::v1::max_value) && value > options.GetExtension(sluice::v1::max_value)) {
    return Bad(f, text, absl::StrCat("above the maximum ", options.GetExtension(sluice::v1::max_value)));
  }
  return value;
}

// Sets (or, for a repeated field, adds) one element parsed from `text`.
absl::Status SetElement(Limits& limits, const FieldDescriptor* f, const std::string& text) {
  const auto* r = limits.GetReflection();
  const bool rep = f->is_repeated();
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
    case FieldDescriptor::CPPTYPE_INT64:
    case FieldDescriptor::CPPTYPE_UINT32:
    case FieldDescriptor::CPPTYPE_UINT64: {
      auto v = ParseInteger(f, text);
      if (!v.ok()) return v.status();
      switch (f->cpp_type()) {
        case FieldDescriptor::CPPTYPE_INT32: {
          auto x = static_cast<int32_t>(*v);
          rep ? r->AddInt32(&limits, f, x) : r->SetInt32(&limits, f, x);
          break;
        }
        case FieldDescriptor::CPPTYPE_INT64: {
          auto x = static_cast<int64_t>(*v);
          rep ? r->AddInt64(&limits, f, x) : r->SetInt64(&limits, f, x);
          break;
        }
        case FieldDescriptor::CPPTYPE_UINT32: {
          auto x = static_cast<uint32_t>(*v);
          rep ? r->AddUInt32(&limits, f, x) : r->SetUInt32(&limits, f, x);
          break;
        }
        default: {
          auto x = static_cast<uint64_t>(*v);
          rep ? r->AddUInt64(&limits, f, x) : r->SetUInt64(&limits, f, x);
          break;
        }
      }
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_BOOL: {
      bool b = false;
      if (!absl::SimpleAtob(text, &b)) return Bad(f, text, "not true or false");
      rep ? r->AddBool(&limits, f, b) : r->SetBool(&limits, f, b);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_DOUBLE:
    case FieldDescriptor::CPPTYPE_FLOAT: {
      double d = 0;
      if (!absl::SimpleAtod(text, &d)) return Bad(f, text, "not a number");
      if (f->cpp_type() == FieldDescriptor::CPPTYPE_DOUBLE) {
        rep ? r->AddDouble(&limits, f, d) : r->SetDouble(&limits, f, d);
      } else {
        rep ? r->AddFloat(&limits, f, static_cast<float>(d)) : r->SetFloat(&limits, f, static_cast<float>(d));
      }
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_ENUM: {
      const auto* v = f->enum_type()->FindValueByName(absl::AsciiStrToUpper(text));
      if (v == nullptr) return Bad(f, text, "not a value of " + f->enum_type()->name());
      rep ? r->AddEnum(&limits, f, v) : r->SetEnum(&limits, f, v);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_STRING: {
      if (f->options().GetExtension(sluice::v1::cidr_list)) {
        auto cidr = sluice::net::ParseCidr(text);
        if (!cidr.ok()) return Bad(f, text, cidr.status().message());
      }
      rep ? r->AddString(&limits, f, text) : r->SetString(&limits, f, text);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_MESSAGE:
      break;
  }
  return Bad(f, text, "this field cannot be set from the command line");
}

}  // namespace

absl::StatusOr<sluice::v1::UpdateLimitsRequest> ParseLimitAssignments(const std::vector<std::string>& assignments) {
  sluice::v1::UpdateLimitsRequest request;
  Limits& limits = *request.mutable_limits();
  std::set<std::string> seen;
  for (const std::string& assignment : assignments) {
    auto eq = assignment.find('=');
    if (eq == std::string::npos || eq == 0) {
      return absl::InvalidArgumentError(absl::StrCat("expected KEY=VALUE, got \"", assignment, "\""));
    }
    std::string key = assignment.substr(0, eq);
    std::string value = assignment.substr(eq + 1);
    const FieldDescriptor* f = Limits::descriptor()->FindFieldByName(key);
    if (f == nullptr) return absl::InvalidArgumentError(absl::StrCat("unknown limit key \"", key, "\""));
    if (!seen.insert(key).second) return absl::InvalidArgumentError(absl::StrCat("limit ", key, " given twice"));
    if (f->is_repeated()) {
      for (absl::string_view element : absl::StrSplit(value, ',', absl::SkipWhitespace())) {
        absl::Status s = SetElement(limits, f, std::string(absl::StripAsciiWhitespace(element)));
        if (!s.ok()) return s;
      }
    } else {
      if (value.empty()) return absl::InvalidArgumentError(absl::StrCat("limit ", key, " needs a value"));
      absl::Status s = SetElement(limits, f, value);
      if (!s.ok()) return s;
    }
    request.mutable_update_mask()->add_paths(key);
  }
  return request;
}

std::vector<const FieldDescriptor*> LimitFields() {
  std::vector<const FieldDescriptor*> fields;
  const auto* d = Limits::descriptor();
  for (int i = 0; i < d->field_count(); ++i) fields.push_back(d->field(i));
  std::sort(fields.begin(), fields.end(),
            [](const FieldDescriptor* a, const FieldDescriptor* b) { return a->number() < b->number(); });
  return fields;
}

std::string LimitValueText(const Limits& limits, const FieldDescriptor* f) {
  const auto* r = limits.GetReflection();
  auto element = [&](int index) -> std::string {
    const bool rep = f->is_repeated();
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_INT32: return absl::StrCat(rep ? r->GetRepeatedInt32(limits, f, index) : r->GetInt32(limits, f));
      case FieldDescriptor::CPPTYPE_INT64: return absl::StrCat(rep ? r->GetRepeatedInt64(limits, f, index) : r->GetInt64(limits, f));
      case FieldDescriptor::CPPTYPE_UINT32: return absl::StrCat(rep ? r->GetRepeatedUInt32(limits, f, index) : r->GetUInt32(limits, f));
      case FieldDescriptor::CPPTYPE_UINT64: return absl::StrCat(rep ? r->GetRepeatedUInt64(limits, f, index) : r->GetUInt64(limits, f));
      case FieldDescriptor::CPPTYPE_DOUBLE: return absl::StrCat(rep ? r->GetRepeatedDouble(limits, f, index) : r->GetDouble(limits, f));
      case FieldDescriptor::CPPTYPE_FLOAT: return absl::StrCat(rep ? r->GetRepeatedFloat(limits, f, index) : r->GetFloat(limits, f));
      case FieldDescriptor::CPPTYPE_BOOL: return (rep ? r->GetRepeatedBool(limits, f, index) : r->GetBool(limits, f)) ? "true" : "false";
      case FieldDescriptor::CPPTYPE_ENUM: return (rep ? r->GetRepeatedEnum(limits, f, index) : r->GetEnum(limits, f))->name();
      case FieldDescriptor::CPPTYPE_STRING: return rep ? r->GetRepeatedString(limits, f, index) : r->GetString(limits, f);
      case FieldDescriptor::CPPTYPE_MESSAGE: return "?";
    }
    return "?";
  };
  if (f->is_repeated()) {
    std::vector<std::string> items;
    for (int i = 0; i < r->FieldSize(limits, f); ++i) items.push_back(element(i));
    return items.empty() ? "(none)" : absl::StrJoin(items, ",");
  }
  if (f->has_presence() && !r->HasField(limits, f)) return "-";
  std::string text = element(0);
  if (IsDuration(f) && FieldUnit(f) == absl::Seconds(1)) {
    uint64_t seconds = 0;
    if (absl::SimpleAtoi(text, &seconds) && seconds >= 60) absl::StrAppend(&text, " (", FormatSeconds(seconds), ")");
  }
  return text;
}

std::vector<std::string> DriftFields(const std::vector<const Limits*>& limits) {
  std::vector<std::string> drift;
  if (limits.size() < 2) return drift;
  for (const FieldDescriptor* f : LimitFields()) {
    const std::string first = LimitValueText(*limits.front(), f);
    for (size_t i = 1; i < limits.size(); ++i) {
      if (LimitValueText(*limits[i], f) != first) {
        drift.push_back(f->name());
        break;
      }
    }
  }
  return drift;
}

}  // namespace sluice::ctl
