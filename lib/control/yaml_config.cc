// lib/control/yaml_config.cc -- see yaml_config.h.
#include "lib/control/yaml_config.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <set>

#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"
#include "lib/control/field_path.h"
#include "lib/status/status_macros.h"
#include "sluice/v1/options.pb.h"

// g++ 12 at -O2 reports -Wdangling-pointer inside yaml-cpp 0.7's node/impl.h (a known false
// positive of that header); the diagnostic points into the header, so silence it for it.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic ignored "-Wdangling-pointer"
#endif
#include "yaml-cpp/yaml.h"

namespace sluice::control {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::OneofDescriptor;
using google::protobuf::Reflection;

absl::string_view AV(std::string_view s) { return absl::string_view(s.data(), s.size()); }

// Edit distance, for "did you mean" on a misspelt key.
size_t Distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::string Suggestion(const Descriptor* type, std::string_view key) {
  std::string best;
  size_t best_distance = std::max<size_t>(2, key.size() / 4) + 1;
  for (int i = 0; i < type->field_count(); ++i) {
    size_t d = Distance(key, type->field(i)->name());
    if (d < best_distance) {
      best_distance = d;
      best = type->field(i)->name();
    }
  }
  return best.empty() ? "" : absl::StrCat(" (did you mean '", best, "'?)");
}

const char* Kind(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map: return "a section of keys";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Scalar: return "a single value";
    default: return "nothing";
  }
}

std::string Join(const std::string& path, const std::string& name) {
  return path.empty() ? name : absl::StrCat(path, ".", name);
}

// Walks one YAML document onto one message; remembers the file name for errors.
class YamlMapper {
 public:
  explicit YamlMapper(std::string_view source) : source_(source) {}

  absl::Status MapMessage(const YAML::Node& node, Message* msg, const std::string& path,
                          const YAML::Mark& where) {
    if (node.IsNull()) return absl::OkStatus();
    const Descriptor* type = msg->GetDescriptor();
    const std::string context = path.empty() ? type->name() : path;
    if (!node.IsMap()) {
      return Error(node, where, absl::StrCat(context, ": expected a section of keys, got ", Kind(node)));
    }
    std::set<int> seen;
    std::vector<std::pair<const OneofDescriptor*, std::string>> oneofs_set;
    for (auto it = node.begin(); it != node.end(); ++it) {
      // A copy (a Node is a handle): it->first belongs to a temporary proxy that yaml-cpp's
      // iterator returns, gone at the end of this statement (ASan: stack-use-after-scope).
      const YAML::Node key = it->first;
      if (!key.IsScalar()) {
        return Error(key, where, absl::StrCat("a key in ", context, " is not a plain name"));
      }
      const std::string& name = key.Scalar();
      const FieldDescriptor* f = type->FindFieldByName(name);
      if (f == nullptr) {
        return Error(key, where, absl::StrCat("unknown key '", name, "' in ", context,
                                              Suggestion(type, name)));
      }
      if (!seen.insert(f->number()).second) {
        return Error(key, where, absl::StrCat("key '", name, "' given twice in ", context));
      }
      if (const OneofDescriptor* oneof = f->real_containing_oneof()) {
        for (const auto& [o, other] : oneofs_set) {
          if (o == oneof) {
            return Error(key, where, absl::StrCat(context, ": '", other, "' and '", name,
                                                  "' are both given; only one of them may be"));
          }
        }
        oneofs_set.emplace_back(oneof, name);
      }
      SLUICE_RETURN_IF_ERROR(MapField(it->second, msg, f, Join(path, name), MarkOf(key, where)));
    }
    return absl::OkStatus();
  }

  absl::Status Error(const YAML::Node& node, const YAML::Mark& fallback, std::string_view text) const {
    return ErrorAt(MarkOf(node, fallback), text);
  }

  absl::Status ErrorAt(const YAML::Mark& mark, std::string_view text) const {
    if (mark.is_null()) return absl::InvalidArgumentError(absl::StrCat(source_, ": ", AV(text)));
    return absl::InvalidArgumentError(absl::StrCat(source_, ":", mark.line + 1, ": ", AV(text)));
  }

 private:
  static YAML::Mark MarkOf(const YAML::Node& node, const YAML::Mark& fallback) {
    YAML::Mark m = node.Mark();
    return m.is_null() ? fallback : m;
  }

  absl::Status MapField(const YAML::Node& value, Message* msg, const FieldDescriptor* f,
                        const std::string& path, const YAML::Mark& key_mark) {
    const Reflection* r = msg->GetReflection();
    const YAML::Mark where = MarkOf(value, key_mark);
    const bool is_message = f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE;
    if (value.IsNull()) {
      // `key:` alone: an empty section, or the field cleared (an overriding file's way to
      // empty a list or drop back to the default).
      if (is_message && !f->is_repeated()) {
        r->MutableMessage(msg, f);
      } else {
        r->ClearField(msg, f);
      }
      return absl::OkStatus();
    }
    if (is_message && !f->is_repeated()) {
      return MapMessage(value, r->MutableMessage(msg, f), path, where);
    }
    if (is_message) {
      if (!value.IsSequence()) {
        return ErrorAt(where, absl::StrCat(path, ": expected a list of sections, got ", Kind(value)));
      }
      r->ClearField(msg, f);
      for (size_t i = 0; i < value.size(); ++i) {
        SLUICE_RETURN_IF_ERROR(MapMessage(value[i], r->AddMessage(msg, f),
                                          absl::StrCat(path, "[", i, "]"), where));
      }
      return absl::OkStatus();
    }
    if (f->is_repeated()) return MapRepeatedScalar(value, msg, f, path, where);
    if (!value.IsScalar()) {
      return ErrorAt(where, absl::StrCat(path, ": expected a single value, got ", Kind(value)));
    }
    if (absl::Status s = SetScalarFromString(msg, f, value.Scalar()); !s.ok()) {
      return ErrorAt(where, absl::StrCat(path, ": ", s.message()));
    }
    return absl::OkStatus();
  }

  // A YAML list, or one scalar: one element (a comma-separated list for (cidr_list) fields).
  absl::Status MapRepeatedScalar(const YAML::Node& value, Message* msg, const FieldDescriptor* f,
                                 const std::string& path, const YAML::Mark& where) {
    const Reflection* r = msg->GetReflection();
    if (value.IsScalar()) {
      absl::Status s;
      if (f->options().GetExtension(sluice::v1::cidr_list)) {
        s = SetRepeatedFromList(msg, f, value.Scalar());
      } else {
        r->ClearField(msg, f);
        s = AddScalarFromString(msg, f, value.Scalar());
      }
      if (!s.ok()) return ErrorAt(where, absl::StrCat(path, ": ", s.message()));
      return absl::OkStatus();
    }
    if (!value.IsSequence()) {
      return ErrorAt(where, absl::StrCat(path, ": expected a list, got ", Kind(value)));
    }
    r->ClearField(msg, f);
    for (size_t i = 0; i < value.size(); ++i) {
      const YAML::Node element = value[i];
      const std::string at = absl::StrCat(path, "[", i, "]");
      if (!element.IsScalar()) {
        return Error(element, where, absl::StrCat(at, ": expected a single value, got ", Kind(element)));
      }
      if (absl::Status s = AddScalarFromString(msg, f, element.Scalar()); !s.ok()) {
        return Error(element, where, absl::StrCat(at, ": ", s.message()));
      }
    }
    return absl::OkStatus();
  }

  std::string source_;
};

}  // namespace

absl::Status LoadYamlString(std::string_view yaml, std::string_view source_name, Message* msg) {
  YamlMapper mapper(source_name);
  std::vector<YAML::Node> documents;
  try {
    documents = YAML::LoadAll(std::string(yaml));
  } catch (const YAML::Exception& e) {
    return mapper.ErrorAt(e.mark, absl::StrCat("YAML syntax: ", e.msg));
  }
  if (documents.empty()) return absl::OkStatus();
  if (documents.size() > 1) {
    return mapper.Error(documents[1], YAML::Mark::null_mark(),
                        "more than one YAML document; a config file holds one mapping");
  }
  // Map onto a copy so a failing file leaves `msg` as it was.
  std::unique_ptr<Message> work(msg->New());
  work->CopyFrom(*msg);
  try {
    SLUICE_RETURN_IF_ERROR(mapper.MapMessage(documents[0], work.get(), "", YAML::Mark::null_mark()));
  } catch (const YAML::Exception& e) {
    return mapper.ErrorAt(e.mark, e.msg);
  }
  msg->GetReflection()->Swap(msg, work.get());
  return absl::OkStatus();
}

absl::Status LoadYamlFile(const std::string& path, Message* msg) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    std::string text = absl::StrCat("cannot open config file ", path, ": ", std::strerror(err));
    return err == ENOENT ? absl::NotFoundError(text) : absl::FailedPreconditionError(text);
  }
  std::string content;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return absl::FailedPreconditionError(
          absl::StrCat("cannot read config file ", path, ": ", std::strerror(err)));
    }
    if (n == 0) break;
    content.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return LoadYamlString(content, path, msg);
}

absl::Status LoadYamlFiles(const std::vector<std::string>& paths, Message* msg) {
  for (const std::string& path : paths) SLUICE_RETURN_IF_ERROR(LoadYamlFile(path, msg));
  return absl::OkStatus();
}

}  // namespace sluice::control
