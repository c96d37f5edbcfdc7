// lib/control/limits_store.cc -- see limits_store.h.
#include "lib/control/limits_store.h"

#include <algorithm>
#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "lib/control/field_path.h"
#include "lib/control/proto_defaults.h"
#include "lib/observe/log.h"
#include "lib/status/status_macros.h"

namespace sluice::control {
namespace {

using google::protobuf::FieldDescriptor;
using sluice::v1::Limits;

// The Limits fields the request changes: those in the mask ("max_sessions" or
// "limits.max_sessions"), else those present in request.limits (lists when non-empty).
absl::StatusOr<std::vector<const FieldDescriptor*>> FieldsToChange(
    const sluice::v1::UpdateLimitsRequest& request) {
  std::vector<const FieldDescriptor*> fields;
  if (request.update_mask().paths_size() == 0) {
    request.limits().GetReflection()->ListFields(request.limits(), &fields);
    if (fields.empty()) {
      return absl::InvalidArgumentError(
          "nothing to update: set fields of limits, or name them in update_mask");
    }
    return fields;
  }
  for (const std::string& path : request.update_mask().paths()) {
    std::string name = path;
    if (absl::StartsWith(name, "limits.")) name = name.substr(7);
    const FieldDescriptor* f = Limits::descriptor()->FindFieldByName(name);
    if (f == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("update_mask: unknown field '", path, "' in Limits"));
    }
    if (std::find(fields.begin(), fields.end(), f) == fields.end()) fields.push_back(f);
  }
  return fields;
}

}  // namespace

LimitsStore::LimitsStore(Limits initial)
    : current_(std::make_shared<const Limits>(std::move(initial))) {}

std::shared_ptr<const Limits> LimitsStore::Get() const {
  std::lock_guard<std::mutex> lock(mu_);
  return current_;
}

uint64_t LimitsStore::updates() const {
  std::lock_guard<std::mutex> lock(mu_);
  return updates_;
}

void LimitsStore::OnChange(std::function<void(const Limits&)> callback) {
  std::lock_guard<std::mutex> lock(update_mu_);
  callbacks_.push_back(std::move(callback));
}

absl::StatusOr<Limits> LimitsStore::Update(const sluice::v1::UpdateLimitsRequest& request) {
  std::lock_guard<std::mutex> writer(update_mu_);
  SLUICE_ASSIGN_OR_RETURN(std::vector<const FieldDescriptor*> fields, FieldsToChange(request));

  // Build the candidate off to the side; readers keep the current snapshot meanwhile.
  Limits next = *Get();
  Limits incoming = request.limits();
  // A field named in the mask but absent from the request drops back to its default
  // (ApplyDefaults below); a list named in the mask is replaced, even by an empty one.
  next.GetReflection()->SwapFields(&next, &incoming, fields);
  ApplyDefaults(&next);
  if (absl::Status s = Validate(next); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("limits.", s.message()));
  }

  auto published = std::make_shared<const Limits>(next);
  {
    std::lock_guard<std::mutex> lock(mu_);
    current_ = published;
    ++updates_;
  }

  std::vector<std::string> names;
  std::vector<std::string> values;
  for (const FieldDescriptor* f : fields) {
    names.push_back(f->name());
    values.push_back(absl::StrCat(f->name(), "=", FieldValueToString(next, f)));
  }
  observe::Info("limits_updated")
      .Kv("fields", absl::StrJoin(names, ","))
      .Kv("values", absl::StrJoin(values, " "));

  for (const auto& callback : callbacks_) callback(*published);
  return next;
}

}  // namespace sluice::control
