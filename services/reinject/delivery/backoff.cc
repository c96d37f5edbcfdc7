// services/reinject/delivery/backoff.cc -- see backoff.h.
#include "services/reinject/delivery/backoff.h"

namespace sluice::reinject {

absl::Duration RetryDelay(uint32_t attempts, absl::Duration minimal, absl::Duration maximal) {
  if (maximal < minimal) return maximal;
  absl::Duration delay = minimal;
  for (uint32_t i = 1; i < attempts && delay < maximal; ++i) delay *= 2;
  return delay < maximal ? delay : maximal;
}

}  // namespace sluice::reinject
