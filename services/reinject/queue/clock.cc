// services/reinject/queue/clock.cc -- see clock.h.
#include "services/reinject/queue/clock.h"

namespace sluice::reinject {
namespace {

class RealClock final : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
};

}  // namespace

const Clock& SystemClock() {
  static const RealClock clock;
  return clock;
}

}  // namespace sluice::reinject
