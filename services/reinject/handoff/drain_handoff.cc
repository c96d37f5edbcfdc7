// services/reinject/handoff/drain_handoff.cc -- see drain_handoff.h.
#include "services/reinject/handoff/drain_handoff.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "asio/post.hpp"
#include "lib/observe/log.h"

namespace sluice::reinject {
namespace {

// After the drain deadline, the sessions get this long to say 421 and close (as on SIGTERM).
constexpr absl::Duration kSessionsCloseGrace = absl::Seconds(5);

uint64_t EntriesLeft(QueueStore& store) {
  uint64_t left = 0;
  QueueCounters c = store.Counters();
  for (int s = sluice::v1::INCOMING; s <= sluice::v1::HOLD; ++s) left += c.messages[static_cast<size_t>(s)];
  return left;
}

}  // namespace

absl::Status DrainHandoff::Check() const {
  if (options_.handoff == nullptr || !options_.handoff->configured()) {
    return absl::FailedPreconditionError(
        "drain --handoff: this reinject replica has no handoff_peers to hand its queue to "
        "(set ReinjectConfig.handoff_peers / --handoff_peers=HOST:PORT)");
  }
  return absl::OkStatus();
}

void DrainHandoff::Run(absl::Duration drain_timeout, std::function<void(absl::Status)> done) {
  asio::post(thread_, [this, drain_timeout, done = std::move(done)] { done(HandOff(drain_timeout)); });
}

absl::Status DrainHandoff::HandOff(absl::Duration drain_timeout) {
  absl::Time until = absl::Now() + drain_timeout + kSessionsCloseGrace;
  while (options_.sessions_active() > 0 && absl::Now() < until) absl::SleepFor(absl::Milliseconds(50));
  *options_.accepting = false;  // a replica handing its queue off takes none in
  stopped_delivering_ = true;
  if (!options_.stop_delivering()) observe::Warn("handoff_deliveries_still_running");
  HandoffResult r = options_.handoff->HandOffAll({}, absl::ZeroDuration());
  uint64_t left = EntriesLeft(*options_.store);
  if (left == 0) return absl::OkStatus();
  std::string why = absl::StrCat("hand-off left ", left, " entries on this replica (they stay queued here; ",
                                 "resume delivers them, a later drain --handoff or SIGTERM retries)");
  if (!r.error.ok()) absl::StrAppend(&why, ": ", r.error.message());
  absl::StatusCode code = r.error.ok() ? absl::StatusCode::kDeadlineExceeded : r.error.code();
  return absl::Status(code, why);
}

void DrainHandoff::Resume() {
  asio::post(thread_, [this] {
    if (!stopped_delivering_) return;  // a plain drain: nothing of ours to undo
    stopped_delivering_ = false;
    *options_.accepting = true;
    if (!options_.deliver_again()) observe::Warn("handoff_deliveries_not_restarted");
  });
}

}  // namespace sluice::reinject
