// services/reinject/delivery/backoff.h
//
// Retry timing after a transient failure, Postfix style: the delay doubles with each failed
// attempt from minimal_backoff_time (300 s) up to maximal_backoff_time (4000 s):
// 300, 600, 1200, 2400, 4000, 4000, ...
//
// Never: returns less than `minimal` or more than `maximal` (maximal wins when smaller).
#pragma once

#include <cstdint>

#include "absl/time/time.h"

namespace sluice::reinject {

// The wait after the `attempts`-th failed attempt (1 for the first failure).
absl::Duration RetryDelay(uint32_t attempts, absl::Duration minimal, absl::Duration maximal);

}  // namespace sluice::reinject
