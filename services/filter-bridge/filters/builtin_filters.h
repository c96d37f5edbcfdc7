// services/filter-bridge/filters/builtin_filters.h
//
// Registers the filter kinds that ship with sluice (rules, milter, grpc) with the filter
// registry (filter.h). Explicit rather than static-initializer registration: a static
// library's unreferenced registrar objects would be dropped by the linker.
//
// Never: is needed by code outside the chain's construction.
#pragma once

namespace sluice::filter_bridge {

// Idempotent and thread-safe.
void RegisterBuiltinFilters();

}  // namespace sluice::filter_bridge
