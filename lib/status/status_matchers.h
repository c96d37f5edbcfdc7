// lib/status/status_matchers.h
//
// gMock matchers for absl::Status / absl::StatusOr in tests (Abseil 20220623 has no
// status_matchers): EXPECT_THAT(s, IsOk()); EXPECT_THAT(s, StatusIs(absl::StatusCode::kNotFound)).
//
// Never: included by production code.
#pragma once

#include <gmock/gmock.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace sluice::testing {

inline const absl::Status& GetStatus(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& s) { return s.status(); }

MATCHER(IsOk, "is OK") {
  const absl::Status& s = ::sluice::testing::GetStatus(arg);
  if (!s.ok()) *result_listener << "status is " << s.ToString();
  return s.ok();
}

MATCHER_P(StatusIs, code, "has status code " + ::testing::PrintToString(code)) {
  const absl::Status& s = ::sluice::testing::GetStatus(arg);
  *result_listener << "status is " << s.ToString();
  return s.code() == code;
}

MATCHER_P2(StatusIs, code, substring, "has status code and message containing") {
  const absl::Status& s = ::sluice::testing::GetStatus(arg);
  *result_listener << "status is " << s.ToString();
  return s.code() == code && std::string(s.message()).find(substring) != std::string::npos;
}

}  // namespace sluice::testing
