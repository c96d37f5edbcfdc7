// lib/control/yaml_writer.cc -- see yaml_writer.h.
#include "lib/control/yaml_writer.h"

#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "google/protobuf/util/message_differencer.h"
#include "lib/control/field_path.h"
#include "lib/control/proto_defaults.h"

namespace sluice::control {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;
using google::protobuf::util::MessageDifferencer;

bool PlainSafe(const std::string& s) {
  if (s.empty()) return false;
  std::string lower = absl::AsciiStrToLower(s);
  // The loader clears a field given as null; the others are YAML 1.1 booleans.
  for (const char* word : {"null", "~", "true", "false", "yes", "no", "on", "off", "y", "n"}) {
    if (lower == word) return false;
  }
  unsigned char first = static_cast<unsigned char>(s[0]);
  if (!absl::ascii_isalnum(first) && s[0] != '_' && s[0] != '.' && s[0] != '/') return false;
  for (unsigned char c : s) {
    if (!absl::ascii_isalnum(c) && std::string_view("_./:@+-=").find(static_cast<char>(c)) == std::string_view::npos) {
      return false;  // spaces, '#', quotes, brackets, control bytes, non-ASCII
    }
  }
  return s.back() != ':';
}

std::string Quoted(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out += absl::StrFormat("\\x%02x", c);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  return out + "\"";
}

// One value as the loader reads it back: field_path's text, strings quoted when needed.
std::string Scalar(const Message& msg, const FieldDescriptor* f, int index) {
  std::string text = ElementToString(msg, f, index);
  if (f->cpp_type() != FieldDescriptor::CPPTYPE_STRING || PlainSafe(text)) return text;
  return Quoted(text);
}

// Does field `f` hold another value in `a` than in `b` (same type)?
bool Differs(const Message& a, const Message& b, const FieldDescriptor* f) {
  const Reflection* ra = a.GetReflection();
  const Reflection* rb = b.GetReflection();
  if (f->is_repeated()) {
    int n = ra->FieldSize(a, f);
    if (n != rb->FieldSize(b, f)) return true;
    for (int i = 0; i < n; ++i) {
      if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
        if (!MessageDifferencer::Equals(ra->GetRepeatedMessage(a, f, i), rb->GetRepeatedMessage(b, f, i))) return true;
      } else if (Scalar(a, f, i) != Scalar(b, f, i)) {
        return true;
      }
    }
    return false;
  }
  if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
    return !MessageDifferencer::Equals(ra->GetMessage(a, f), rb->GetMessage(b, f));
  }
  return Scalar(a, f, -1) != Scalar(b, f, -1);
}

void Write(std::string& out, const Message& msg, const Message* defaults, int indent);

// One element of a list of messages, as "- key: ..." at `indent`.
void WriteElement(std::string& out, const Message& element, bool only_changes, int indent) {
  std::unique_ptr<Message> fresh;
  if (only_changes) {
    fresh.reset(element.New());
    ApplyDefaults(fresh.get());
  }
  std::string body;
  Write(body, element, fresh.get(), indent + 2);
  if (body.empty()) {
    absl::StrAppend(&out, std::string(indent, ' '), "- {}\n");
    return;
  }
  body.replace(static_cast<size_t>(indent), 2, "- ");
  out += body;
}

void Write(std::string& out, const Message& msg, const Message* defaults, int indent) {
  const Reflection* r = msg.GetReflection();
  const std::string pad(static_cast<size_t>(indent), ' ');
  const google::protobuf::Descriptor* type = msg.GetDescriptor();
  for (int i = 0; i < type->field_count(); ++i) {
    const FieldDescriptor* f = type->field(i);
    if (f->real_containing_oneof() != nullptr && !r->HasField(msg, f)) continue;
    if (defaults != nullptr && !Differs(msg, *defaults, f)) continue;
    if (f->is_repeated()) {
      const int n = r->FieldSize(msg, f);
      if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
        if (n == 0) {
          absl::StrAppend(&out, pad, f->name(), ": []\n");
          continue;
        }
        absl::StrAppend(&out, pad, f->name(), ":\n");
        for (int j = 0; j < n; ++j) WriteElement(out, r->GetRepeatedMessage(msg, f, j), defaults != nullptr, indent + 2);
        continue;
      }
      std::string list;
      for (int j = 0; j < n; ++j) absl::StrAppend(&list, j == 0 ? "" : ", ", Scalar(msg, f, j));
      absl::StrAppend(&out, pad, f->name(), ": [", list, "]\n");
      continue;
    }
    if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      const Message* sub_defaults = nullptr;
      std::unique_ptr<Message> fresh;  // a section the defaults lack (a oneof member): its schema defaults
      if (defaults != nullptr) {
        const Reflection* rd = defaults->GetReflection();
        if (rd->HasField(*defaults, f)) {
          sub_defaults = &rd->GetMessage(*defaults, f);
        } else {
          fresh.reset(r->GetMessage(msg, f).New());
          ApplyDefaults(fresh.get());
          sub_defaults = fresh.get();
        }
      }
      std::string body;
      Write(body, r->GetMessage(msg, f), sub_defaults, indent + 2);
      if (body.empty()) {
        absl::StrAppend(&out, pad, f->name(), ": {}\n");
      } else {
        absl::StrAppend(&out, pad, f->name(), ":\n", body);
      }
      continue;
    }
    absl::StrAppend(&out, pad, f->name(), ": ", Scalar(msg, f, -1), "\n");
  }
}

}  // namespace

std::string ConfigToYaml(const Message& config, const Message* defaults) {
  std::string out;
  Write(out, config, defaults, 0);
  return out;
}

}  // namespace sluice::control
