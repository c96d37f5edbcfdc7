// lib/status/status_macros.h
//
// The two absl::Status helpers Abseil 20220623 (Debian 12) lacks: return early on an error
// Status, and unwrap a StatusOr or return its error. Used at every module boundary.
//
// Never: throws, logs, or changes the Status it passes on.
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define SLUICE_STATUS_CONCAT_INNER(a, b) a##b
#define SLUICE_STATUS_CONCAT(a, b) SLUICE_STATUS_CONCAT_INNER(a, b)

// Evaluates an expression yielding absl::Status; returns it from the caller if not OK.
#define SLUICE_RETURN_IF_ERROR(expr)                  \
  do {                                                \
    ::absl::Status sluice_status_ = (expr);           \
    if (!sluice_status_.ok()) return sluice_status_;  \
  } while (0)

// `SLUICE_ASSIGN_OR_RETURN(auto x, MakeX());` -- x is the value, or the caller returns the error.
#define SLUICE_ASSIGN_OR_RETURN(lhs, expr) \
  SLUICE_ASSIGN_OR_RETURN_IMPL(SLUICE_STATUS_CONCAT(sluice_statusor_, __LINE__), lhs, expr)
#define SLUICE_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.ok()) return tmp.status();                \
  lhs = std::move(tmp).value()
