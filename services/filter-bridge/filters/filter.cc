// services/filter-bridge/filters/filter.cc -- see filter.h: verdict names and the registry.
#include "services/filter-bridge/filters/filter.h"

#include <map>
#include <mutex>

namespace sluice::filter_bridge {
namespace {

struct Registry {
  std::mutex mu;
  std::map<std::string, std::unique_ptr<FilterFactory>, std::less<>> factories;
};

Registry& GetRegistry() {
  static Registry* registry = new Registry();  // never destroyed: used until exit
  return *registry;
}

}  // namespace

std::string_view VerdictName(Verdict v) {
  switch (v) {
    case Verdict::kContinue: return "continue";
    case Verdict::kAccept: return "accept";
    case Verdict::kReject: return "reject";
    case Verdict::kTempfail: return "tempfail";
    case Verdict::kDiscard: return "discard";
  }
  return "continue";
}

bool IsFinal(Verdict v) {
  return v == Verdict::kReject || v == Verdict::kTempfail || v == Verdict::kDiscard;
}

void RegisterFilterFactory(std::unique_ptr<FilterFactory> factory) {
  Registry& r = GetRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  std::string kind(factory->kind());
  r.factories.emplace(std::move(kind), std::move(factory));
}

FilterFactory* FindFilterFactory(std::string_view kind) {
  Registry& r = GetRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  auto it = r.factories.find(kind);
  return it == r.factories.end() ? nullptr : it->second.get();
}

std::string FilterKind(const sluice::v1::FilterConfig& config) {
  const google::protobuf::OneofDescriptor* oneof =
      config.GetDescriptor()->FindOneofByName("kind");
  if (oneof == nullptr) return "";
  const google::protobuf::FieldDescriptor* field =
      config.GetReflection()->GetOneofFieldDescriptor(config, oneof);
  return field == nullptr ? "" : field->name();
}

}  // namespace sluice::filter_bridge
