// services/filter-bridge/filters/builtin_filters.cc -- see builtin_filters.h.
#include "services/filter-bridge/filters/builtin_filters.h"

#include <mutex>

#include "services/filter-bridge/filters/filter.h"
#include "services/filter-bridge/filters/grpc_filter.h"
#include "services/filter-bridge/filters/milter_filter.h"
#include "services/filter-bridge/filters/rules_filter.h"

namespace sluice::filter_bridge {

void RegisterBuiltinFilters() {
  static std::once_flag once;
  std::call_once(once, [] {
    RegisterFilterFactory(NewRulesFilterFactory());
    RegisterFilterFactory(NewMilterFilterFactory());
    RegisterFilterFactory(NewGrpcFilterFactory());
  });
}

}  // namespace sluice::filter_bridge
