// lib/control/field_path.cc -- see field_path.h.
#include "lib/control/field_path.h"

#include <cstdint>
#include <limits>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "lib/status/status_macros.h"
#include "sluice/v1/options.pb.h"

namespace sluice::control {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::EnumDescriptor;
using google::protobuf::EnumValueDescriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

absl::string_view AV(std::string_view s) { return absl::string_view(s.data(), s.size()); }

absl::Status Invalid(std::string_view text) { return absl::InvalidArgumentError(AV(text)); }

std::string Quoted(std::string_view value) { return absl::StrCat("'", AV(value), "'"); }

// "RuleAction" -> "RULE_ACTION_": the prefix proto style gives every value of an enum.
std::string EnumPrefix(const EnumDescriptor* type) {
  std::string out;
  for (char c : type->name()) {
    if (absl::ascii_isupper(static_cast<unsigned char>(c)) && !out.empty()) out.push_back('_');
    out.push_back(absl::ascii_toupper(static_cast<unsigned char>(c)));
  }
  out.push_back('_');
  return out;
}

std::vector<std::string> SplitList(std::string_view list) {
  std::vector<std::string> out;
  for (absl::string_view part : absl::StrSplit(AV(list), ',', absl::SkipWhitespace())) {
    out.emplace_back(absl::StripAsciiWhitespace(part));
  }
  return out;
}

bool ParseBool(std::string_view text, bool* out) {
  std::string t = absl::AsciiStrToLower(AV(text));
  if (t == "true" || t == "yes" || t == "on" || t == "1") {
    *out = true;
    return true;
  }
  if (t == "false" || t == "no" || t == "off" || t == "0") {
    *out = false;
    return true;
  }
  return false;
}

// The unit a (duration) field counts in, from the suffix of its name.
absl::Duration DurationUnit(const FieldDescriptor* field) {
  const std::string& name = field->name();
  auto ends_with = [&](std::string_view suffix) {
    return name.size() >= suffix.size() &&
           std::string_view(name).substr(name.size() - suffix.size()) == suffix;
  };
  if (ends_with("_milliseconds") || ends_with("_ms")) return absl::Milliseconds(1);
  if (ends_with("_minutes")) return absl::Minutes(1);
  if (ends_with("_hours")) return absl::Hours(1);
  return absl::Seconds(1);
}

// absl::ParseDuration stops at hours; Postfix time values also say "5d" and "1w". Whole days
// and weeks become hours ("1d12h" -> "24h12h"); anything else is left for ParseDuration.
std::string ExpandDaysAndWeeks(std::string_view text) {
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    size_t j = i;
    while (j < text.size() && absl::ascii_isdigit(static_cast<unsigned char>(text[j]))) ++j;
    uint64_t n = 0;
    const bool whole = j > i && (i == 0 || text[i - 1] != '.') && j < text.size() &&
                       (text[j] == 'd' || text[j] == 'w') &&
                       absl::SimpleAtoi(absl::string_view(text.data() + i, j - i), &n) &&
                       n <= 1000000;
    if (whole) {
      absl::StrAppend(&out, n * (text[j] == 'd' ? 24 : 168), "h");
      i = j + 1;
    } else if (j > i) {
      out.append(text.substr(i, j - i));
      i = j;
    } else {
      out.push_back(text[i++]);
    }
  }
  return out;
}

const char* UnitName(const FieldDescriptor* field) {
  const absl::Duration unit = DurationUnit(field);
  if (unit == absl::Milliseconds(1)) return "milliseconds";
  if (unit == absl::Minutes(1)) return "minutes";
  if (unit == absl::Hours(1)) return "hours";
  return "seconds";
}

// A plain integer, or for a (duration) field also a duration string counted in the unit of
// the field's name and rounded up ("250ms" is 1 second: a timeout never becomes zero).
template <typename T>
absl::Status ParseInteger(const FieldDescriptor* field, std::string_view text, T* out) {
  std::string t(absl::StripAsciiWhitespace(AV(text)));
  if (absl::SimpleAtoi(t, out)) return absl::OkStatus();
  const bool is_duration = field->options().GetExtension(sluice::v1::duration);
  if (!is_duration) {
    std::string_view digits = t;
    if (!digits.empty() && (digits[0] == '-' || digits[0] == '+')) digits.remove_prefix(1);
    if (digits.empty() || digits.find_first_not_of("0123456789") != std::string_view::npos) {
      return Invalid(absl::StrCat(Quoted(text), " is not a whole number"));
    }
    return Invalid(absl::StrCat(Quoted(text), " is not a number in range [",
                                std::numeric_limits<T>::min(), ", ",
                                std::numeric_limits<T>::max(), "]"));
  }
  absl::Duration d;
  if (!absl::ParseDuration(ExpandDaysAndWeeks(t), &d) || d == absl::InfiniteDuration() ||
      d == -absl::InfiniteDuration()) {
    return Invalid(absl::StrCat(Quoted(text), " is not a duration (a number of ",
                                UnitName(field), ", or e.g. 100s, 5m, 1h30m, 5d)"));
  }
  if (d < absl::ZeroDuration()) return Invalid(absl::StrCat(Quoted(text), " is negative"));
  absl::Duration rem;
  int64_t count = absl::IDivDuration(d, DurationUnit(field), &rem);
  if (rem > absl::ZeroDuration()) ++count;
  if (static_cast<uint64_t>(count) > static_cast<uint64_t>(std::numeric_limits<T>::max())) {
    return Invalid(absl::StrCat(Quoted(text), " is too long a duration"));
  }
  *out = static_cast<T>(count);
  return absl::OkStatus();
}

absl::StatusOr<const EnumValueDescriptor*> ParseEnum(const EnumDescriptor* type,
                                                     std::string_view text) {
  std::string name = absl::AsciiStrToUpper(absl::StripAsciiWhitespace(AV(text)));
  for (char& c : name) {
    if (c == '-') c = '_';
  }
  if (!name.empty()) {
    if (const EnumValueDescriptor* v = type->FindValueByName(name)) return v;
    if (const EnumValueDescriptor* v = type->FindValueByName(EnumPrefix(type) + name)) return v;
  }
  std::vector<std::string> names;
  for (int i = 0; i < type->value_count(); ++i) {
    if (type->value(i)->number() != 0) names.push_back(ShortEnumName(type->value(i)));
  }
  return Invalid(absl::StrCat(Quoted(text), " is not a ", type->name(), " (one of: ",
                              absl::StrJoin(names, ", "), ")"));
}

// Converts `text` for the field and either sets it (singular) or appends it (repeated).
absl::Status StoreScalar(Message* msg, const FieldDescriptor* field, std::string_view text) {
  const Reflection* r = msg->GetReflection();
  const bool add = field->is_repeated();
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32: {
      int32_t v = 0;
      SLUICE_RETURN_IF_ERROR(ParseInteger(field, text, &v));
      add ? r->AddInt32(msg, field, v) : r->SetInt32(msg, field, v);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_INT64: {
      int64_t v = 0;
      SLUICE_RETURN_IF_ERROR(ParseInteger(field, text, &v));
      add ? r->AddInt64(msg, field, v) : r->SetInt64(msg, field, v);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_UINT32: {
      uint32_t v = 0;
      SLUICE_RETURN_IF_ERROR(ParseInteger(field, text, &v));
      add ? r->AddUInt32(msg, field, v) : r->SetUInt32(msg, field, v);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_UINT64: {
      uint64_t v = 0;
      SLUICE_RETURN_IF_ERROR(ParseInteger(field, text, &v));
      add ? r->AddUInt64(msg, field, v) : r->SetUInt64(msg, field, v);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_DOUBLE:
    case FieldDescriptor::CPPTYPE_FLOAT: {
      double v = 0;
      if (!absl::SimpleAtod(AV(text), &v)) return Invalid(absl::StrCat(Quoted(text), " is not a number"));
      if (field->cpp_type() == FieldDescriptor::CPPTYPE_DOUBLE) {
        add ? r->AddDouble(msg, field, v) : r->SetDouble(msg, field, v);
      } else {
        auto f = static_cast<float>(v);
        add ? r->AddFloat(msg, field, f) : r->SetFloat(msg, field, f);
      }
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_BOOL: {
      bool v = false;
      if (!ParseBool(text, &v)) {
        return Invalid(absl::StrCat(Quoted(text), " is not a boolean (true/false, yes/no)"));
      }
      add ? r->AddBool(msg, field, v) : r->SetBool(msg, field, v);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_ENUM: {
      SLUICE_ASSIGN_OR_RETURN(const EnumValueDescriptor* v, ParseEnum(field->enum_type(), text));
      add ? r->AddEnum(msg, field, v) : r->SetEnum(msg, field, v);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_STRING: {
      std::string v(text);
      add ? r->AddString(msg, field, std::move(v)) : r->SetString(msg, field, std::move(v));
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_MESSAGE:
      break;
  }
  return Invalid("is a section with fields of its own, not a single value");
}

// The path so far, for errors: "limits" or "the top level".
std::string Context(std::string_view walked, const Descriptor* type) {
  return walked.empty() ? type->name() : std::string(walked);
}

}  // namespace

std::string ShortEnumName(const EnumValueDescriptor* value) {
  std::string prefix = EnumPrefix(value->type());
  std::string_view name = value->name();
  if (name.size() > prefix.size() && name.substr(0, prefix.size()) == prefix) {
    name.remove_prefix(prefix.size());
  }
  return absl::AsciiStrToLower(AV(name));
}

absl::Status SetScalarFromString(Message* msg, const FieldDescriptor* field,
                                 std::string_view value) {
  if (field->is_repeated()) return Invalid("is a list; set it from a list");
  return StoreScalar(msg, field, value);
}

absl::Status AddScalarFromString(Message* msg, const FieldDescriptor* field,
                                 std::string_view value) {
  if (!field->is_repeated()) return Invalid("is not a list");
  return StoreScalar(msg, field, value);
}

absl::Status SetRepeatedFromList(Message* msg, const FieldDescriptor* field,
                                 std::string_view list) {
  if (!field->is_repeated() || field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
    return Invalid("is not a list of values");
  }
  // Parse into a scratch copy first so a bad element leaves the field as it was.
  std::unique_ptr<Message> scratch(msg->New());
  for (const std::string& element : SplitList(list)) {
    SLUICE_RETURN_IF_ERROR(StoreScalar(scratch.get(), field, element));
  }
  msg->GetReflection()->ClearField(msg, field);
  msg->MergeFrom(*scratch);
  return absl::OkStatus();
}

absl::Status ResolveFieldPath(Message* msg, std::string_view path, Message** holder,
                              const FieldDescriptor** field) {
  std::string walked;
  Message* current = msg;
  std::vector<std::string> parts = absl::StrSplit(AV(path), '.');
  for (size_t i = 0; i < parts.size(); ++i) {
    const FieldDescriptor* f = current->GetDescriptor()->FindFieldByName(parts[i]);
    if (f == nullptr) {
      return Invalid(absl::StrCat(AV(path), ": unknown field ", Quoted(parts[i]), " in ",
                                  Context(walked, current->GetDescriptor())));
    }
    if (i + 1 == parts.size()) {
      *holder = current;
      *field = f;
      return absl::OkStatus();
    }
    if (f->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE || f->is_repeated()) {
      return Invalid(absl::StrCat(AV(path), ": ", Quoted(parts[i]),
                                  " is not a section one can name a field of"));
    }
    current = current->GetReflection()->MutableMessage(current, f);
    walked = walked.empty() ? parts[i] : absl::StrCat(walked, ".", parts[i]);
  }
  return Invalid("empty field path");
}

absl::Status SetFieldFromString(Message* msg, std::string_view path, std::string_view value) {
  Message* holder = nullptr;
  const FieldDescriptor* field = nullptr;
  SLUICE_RETURN_IF_ERROR(ResolveFieldPath(msg, path, &holder, &field));
  absl::Status s = field->is_repeated() ? SetRepeatedFromList(holder, field, value)
                                        : SetScalarFromString(holder, field, value);
  if (!s.ok()) return Invalid(absl::StrCat(AV(path), ": ", s.message()));
  return absl::OkStatus();
}

absl::Status AppendFieldFromString(Message* msg, std::string_view path, std::string_view value) {
  Message* holder = nullptr;
  const FieldDescriptor* field = nullptr;
  SLUICE_RETURN_IF_ERROR(ResolveFieldPath(msg, path, &holder, &field));
  if (!field->is_repeated() || field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
    return Invalid(absl::StrCat(AV(path), ": is not a list of values"));
  }
  std::unique_ptr<Message> scratch(holder->New());
  for (const std::string& element : SplitList(value)) {
    absl::Status s = StoreScalar(scratch.get(), field, element);
    if (!s.ok()) return Invalid(absl::StrCat(AV(path), ": ", s.message()));
  }
  holder->MergeFrom(*scratch);
  return absl::OkStatus();
}

std::string ElementToString(const Message& msg, const FieldDescriptor* field, int index) {
  const Reflection* r = msg.GetReflection();
  const bool rep = index >= 0;
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      return absl::StrCat(rep ? r->GetRepeatedInt32(msg, field, index) : r->GetInt32(msg, field));
    case FieldDescriptor::CPPTYPE_INT64:
      return absl::StrCat(rep ? r->GetRepeatedInt64(msg, field, index) : r->GetInt64(msg, field));
    case FieldDescriptor::CPPTYPE_UINT32:
      return absl::StrCat(rep ? r->GetRepeatedUInt32(msg, field, index) : r->GetUInt32(msg, field));
    case FieldDescriptor::CPPTYPE_UINT64:
      return absl::StrCat(rep ? r->GetRepeatedUInt64(msg, field, index) : r->GetUInt64(msg, field));
    case FieldDescriptor::CPPTYPE_DOUBLE:
      return absl::StrCat(rep ? r->GetRepeatedDouble(msg, field, index) : r->GetDouble(msg, field));
    case FieldDescriptor::CPPTYPE_FLOAT:
      return absl::StrCat(rep ? r->GetRepeatedFloat(msg, field, index) : r->GetFloat(msg, field));
    case FieldDescriptor::CPPTYPE_BOOL:
      return (rep ? r->GetRepeatedBool(msg, field, index) : r->GetBool(msg, field)) ? "true" : "false";
    case FieldDescriptor::CPPTYPE_ENUM:
      return ShortEnumName(rep ? r->GetRepeatedEnum(msg, field, index) : r->GetEnum(msg, field));
    case FieldDescriptor::CPPTYPE_STRING:
      return rep ? r->GetRepeatedString(msg, field, index) : r->GetString(msg, field);
    case FieldDescriptor::CPPTYPE_MESSAGE:
      return (rep ? r->GetRepeatedMessage(msg, field, index) : r->GetMessage(msg, field))
          .ShortDebugString();
  }
  return "";
}

std::string FieldValueToString(const Message& msg, const FieldDescriptor* field) {
  if (!field->is_repeated()) return ElementToString(msg, field, -1);
  std::vector<std::string> elements;
  const int n = msg.GetReflection()->FieldSize(msg, field);
  for (int i = 0; i < n; ++i) elements.push_back(ElementToString(msg, field, i));
  return absl::StrJoin(elements, field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE ? "; " : ",");
}

}  // namespace sluice::control
