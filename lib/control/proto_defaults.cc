// lib/control/proto_defaults.cc -- see proto_defaults.h.
#include "lib/control/proto_defaults.h"

#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "google/protobuf/dynamic_message.h"
#include "google/protobuf/message.h"
#include "lib/control/field_path.h"
#include "lib/net/cidr.h"
#include "lib/observe/log.h"
#include "lib/status/status_macros.h"
#include "sluice/v1/options.pb.h"

namespace sluice::control {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;


bool HasDefault(const FieldDescriptor* f) {
  return f->options().HasExtension(sluice::v1::default_value);
}

bool IsInteger(const FieldDescriptor* f) {
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
    case FieldDescriptor::CPPTYPE_INT64:
    case FieldDescriptor::CPPTYPE_UINT32:
    case FieldDescriptor::CPPTYPE_UINT64:
      return true;
    default:
      return false;
  }
}

// Does `type`, or a singular non-oneof message field under it, carry a default? Such a
// sub-message is created by ApplyDefaults. `stack` breaks recursion in self-nesting types.
bool TypeHasDefaults(const Descriptor* type, std::vector<const Descriptor*>& stack) {
  for (const Descriptor* t : stack) {
    if (t == type) return false;
  }
  stack.push_back(type);
  bool found = false;
  for (int i = 0; i < type->field_count() && !found; ++i) {
    const FieldDescriptor* f = type->field(i);
    if (HasDefault(f)) {
      found = true;
    } else if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE && !f->is_repeated() &&
               f->real_containing_oneof() == nullptr) {
      found = TypeHasDefaults(f->message_type(), stack);
    }
  }
  stack.pop_back();
  return found;
}

// Gives one field its default when it is unset.
absl::Status ApplyFieldDefault(Message* msg, const FieldDescriptor* f) {
  const Reflection* r = msg->GetReflection();
  const std::string& text = f->options().GetExtension(sluice::v1::default_value);
  if (f->is_repeated()) {
    if (r->FieldSize(*msg, f) > 0) return absl::OkStatus();
    return SetRepeatedFromList(msg, f, text);
  }
  // For a field without presence HasField() is "differs from the zero value".
  if (r->HasField(*msg, f)) return absl::OkStatus();
  return SetScalarFromString(msg, f, text);
}

void ApplyDefaultsImpl(Message* msg, std::vector<const Descriptor*>& creating) {
  const Descriptor* type = msg->GetDescriptor();
  const Reflection* r = msg->GetReflection();
  for (int i = 0; i < type->field_count(); ++i) {
    const FieldDescriptor* f = type->field(i);
    if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      if (f->is_repeated()) {
        for (int j = 0; j < r->FieldSize(*msg, f); ++j) {
          ApplyDefaultsImpl(r->MutableRepeatedMessage(msg, f, j), creating);
        }
        continue;
      }
      bool enter = r->HasField(*msg, f);
      if (!enter && f->real_containing_oneof() == nullptr) {
        std::vector<const Descriptor*> stack = creating;
        enter = TypeHasDefaults(f->message_type(), stack);
      }
      if (enter) {
        creating.push_back(f->message_type());
        ApplyDefaultsImpl(r->MutableMessage(msg, f), creating);
        creating.pop_back();
      }
      continue;
    }
    if (!HasDefault(f)) continue;
    if (absl::Status s = ApplyFieldDefault(msg, f); !s.ok()) {
      // Only a broken .proto gets here; CheckSchemaOptions() fails the tests for it.
      observe::Error("schema_default_invalid").Kv("field", f->full_name()).Kv("error", std::string(s.message()));
    }
  }
}

std::string Join(const std::string& path, const std::string& name) {
  return path.empty() ? name : absl::StrCat(path, ".", name);
}

// One integer value against the field's bounds. Unsigned values above INT64_MAX are above
// every bound an int64 option can state.
absl::Status CheckBounds(const FieldDescriptor* f, bool negative, uint64_t magnitude,
                         const std::string& path) {
  const auto& o = f->options();
  const bool has_min = o.HasExtension(sluice::v1::min_value);
  const bool has_max = o.HasExtension(sluice::v1::max_value);
  if (!has_min && !has_max) return absl::OkStatus();
  constexpr uint64_t kInt64Max = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  std::string shown = negative ? absl::StrCat("-", magnitude) : absl::StrCat(magnitude);
  if (!negative && magnitude > kInt64Max) {
    if (has_max) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": ", shown, " is above the maximum ",
                                                     o.GetExtension(sluice::v1::max_value)));
    }
    return absl::OkStatus();
  }
  // Here the value fits an int64 (a negative magnitude is at most 2^63).
  const int64_t v = negative ? static_cast<int64_t>(0 - magnitude) : static_cast<int64_t>(magnitude);
  if (has_min && v < o.GetExtension(sluice::v1::min_value)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", shown, " is below the minimum ",
                                                   o.GetExtension(sluice::v1::min_value)));
  }
  if (has_max && v > o.GetExtension(sluice::v1::max_value)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", shown, " is above the maximum ",
                                                   o.GetExtension(sluice::v1::max_value)));
  }
  return absl::OkStatus();
}

// The integer at `index` (-1: singular) as sign and magnitude.
void IntegerValue(const Message& msg, const FieldDescriptor* f, int index, bool* negative,
                  uint64_t* magnitude) {
  const Reflection* r = msg.GetReflection();
  const bool rep = index >= 0;
  int64_t s = 0;
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_UINT32:
      *negative = false;
      *magnitude = rep ? r->GetRepeatedUInt32(msg, f, index) : r->GetUInt32(msg, f);
      return;
    case FieldDescriptor::CPPTYPE_UINT64:
      *negative = false;
      *magnitude = rep ? r->GetRepeatedUInt64(msg, f, index) : r->GetUInt64(msg, f);
      return;
    case FieldDescriptor::CPPTYPE_INT32:
      s = rep ? r->GetRepeatedInt32(msg, f, index) : r->GetInt32(msg, f);
      break;
    default:
      s = rep ? r->GetRepeatedInt64(msg, f, index) : r->GetInt64(msg, f);
      break;
  }
  *negative = s < 0;
  *magnitude = s < 0 ? 0 - static_cast<uint64_t>(s) : static_cast<uint64_t>(s);
}

absl::Status ValidateField(const Message& msg, const FieldDescriptor* f, const std::string& path);

absl::Status ValidateImpl(const Message& msg, const std::string& path) {
  const Descriptor* type = msg.GetDescriptor();
  for (int i = 0; i < type->field_count(); ++i) {
    SLUICE_RETURN_IF_ERROR(ValidateField(msg, type->field(i), Join(path, type->field(i)->name())));
  }
  return absl::OkStatus();
}

absl::Status ValidateField(const Message& msg, const FieldDescriptor* f, const std::string& path) {
  const Reflection* r = msg.GetReflection();
  if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
    if (f->is_repeated()) {
      for (int j = 0; j < r->FieldSize(msg, f); ++j) {
        SLUICE_RETURN_IF_ERROR(
            ValidateImpl(r->GetRepeatedMessage(msg, f, j), absl::StrCat(path, "[", j, "]")));
      }
    } else if (r->HasField(msg, f)) {
      SLUICE_RETURN_IF_ERROR(ValidateImpl(r->GetMessage(msg, f), path));
    }
    return absl::OkStatus();
  }
  if (IsInteger(f)) {
    bool negative = false;
    uint64_t magnitude = 0;
    if (f->is_repeated()) {
      for (int j = 0; j < r->FieldSize(msg, f); ++j) {
        IntegerValue(msg, f, j, &negative, &magnitude);
        SLUICE_RETURN_IF_ERROR(CheckBounds(f, negative, magnitude, absl::StrCat(path, "[", j, "]")));
      }
    } else if (!f->has_presence() || r->HasField(msg, f)) {
      IntegerValue(msg, f, -1, &negative, &magnitude);
      SLUICE_RETURN_IF_ERROR(CheckBounds(f, negative, magnitude, path));
    }
  }
  if (f->options().GetExtension(sluice::v1::cidr_list) &&
      f->cpp_type() == FieldDescriptor::CPPTYPE_STRING) {
    const int n = f->is_repeated() ? r->FieldSize(msg, f) : (r->HasField(msg, f) ? 1 : 0);
    for (int j = 0; j < n; ++j) {
      std::string text = f->is_repeated() ? r->GetRepeatedString(msg, f, j) : r->GetString(msg, f);
      if (auto c = net::ParseCidr(text); !c.ok()) {
        std::string at = f->is_repeated() ? absl::StrCat(path, "[", j, "]") : path;
        return absl::InvalidArgumentError(absl::StrCat(at, ": ", c.status().message()));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status LintType(const Descriptor* type, std::vector<const Descriptor*>& seen) {
  for (const Descriptor* t : seen) {
    if (t == type) return absl::OkStatus();
  }
  seen.push_back(type);
  // Generated types come from the generated factory; types built at run time (tests of this
  // lint) from a dynamic one.
  static google::protobuf::DynamicMessageFactory* dynamic_factory =
      new google::protobuf::DynamicMessageFactory();
  const Message* prototype =
      google::protobuf::MessageFactory::generated_factory()->GetPrototype(type);
  if (prototype == nullptr) prototype = dynamic_factory->GetPrototype(type);
  for (int i = 0; i < type->field_count(); ++i) {
    const FieldDescriptor* f = type->field(i);
    const auto& o = f->options();
    const std::string name = f->full_name();
    if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      if (HasDefault(f) || o.HasExtension(sluice::v1::min_value) ||
          o.HasExtension(sluice::v1::max_value) || o.GetExtension(sluice::v1::duration) ||
          o.GetExtension(sluice::v1::cidr_list)) {
        return absl::InternalError(absl::StrCat(name, ": a message field takes no value options"));
      }
      SLUICE_RETURN_IF_ERROR(LintType(f->message_type(), seen));
      continue;
    }
    if ((o.HasExtension(sluice::v1::min_value) || o.HasExtension(sluice::v1::max_value) ||
         o.GetExtension(sluice::v1::duration)) && !IsInteger(f)) {
      return absl::InternalError(absl::StrCat(name, ": bounds and (duration) need an integer field"));
    }
    if (o.GetExtension(sluice::v1::cidr_list) &&
        f->cpp_type() != FieldDescriptor::CPPTYPE_STRING) {
      return absl::InternalError(absl::StrCat(name, ": (cidr_list) needs a string field"));
    }
    if (!HasDefault(f)) continue;
    std::unique_ptr<Message> scratch(prototype->New());
    if (absl::Status s = ApplyFieldDefault(scratch.get(), f); !s.ok()) {
      return absl::InternalError(absl::StrCat(name, ": bad (default_value): ", s.message()));
    }
    if (absl::Status s = ValidateField(*scratch, f, name); !s.ok()) {
      return absl::InternalError(absl::StrCat("(default_value) out of range: ", s.message()));
    }
  }
  return absl::OkStatus();
}

}  // namespace

void ApplyDefaults(Message* msg) {
  std::vector<const Descriptor*> creating{msg->GetDescriptor()};
  ApplyDefaultsImpl(msg, creating);
}

absl::Status Validate(const Message& msg) { return ValidateImpl(msg, ""); }

absl::Status CheckSchemaOptions(const Descriptor* type) {
  std::vector<const Descriptor*> seen;
  return LintType(type, seen);
}

}  // namespace sluice::control
