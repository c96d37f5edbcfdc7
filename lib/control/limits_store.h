// lib/control/limits_store.h
//
// The Limits in force in one process, shared by every session thread and changed live by
// Admin.UpdateLimits: readers take a cheap immutable snapshot (a session takes one per
// command/transaction), writers validate, merge and publish a new one, log and count the
// change, then tell subscribers (e.g. a listener resizing its admission).
//
// Updates are serialized: each one validates, publishes, logs one `limits_updated` line and
// runs the callbacks before the next one starts, so callbacks see the changes in order.
//
// Never: publishes an invalid Limits; blocks readers behind validation.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "absl/status/statusor.h"
#include "sluice/v1/admin.pb.h"
#include "sluice/v1/limits.pb.h"

namespace sluice::control {

class LimitsStore {
 public:
  // `initial` must already carry defaults (ApplyDefaults) and be valid.
  explicit LimitsStore(sluice::v1::Limits initial);

  std::shared_ptr<const sluice::v1::Limits> Get() const;

  // Applies the fields named by the mask (or present, when the mask is empty), validates the
  // result (INVALID_ARGUMENT naming the field), publishes it and returns it.
  absl::StatusOr<sluice::v1::Limits> Update(const sluice::v1::UpdateLimitsRequest& request);

  // Called after every successful Update, on the updating thread, in the order of the
  // updates. A callback may call Get(), but not Update() or OnChange() (it would deadlock).
  void OnChange(std::function<void(const sluice::v1::Limits&)> callback);

  uint64_t updates() const;  // successful updates so far

 private:
  std::mutex update_mu_;  // serializes Update() and guards callbacks_
  mutable std::mutex mu_;  // guards current_ and updates_: held only to copy a pointer
  std::shared_ptr<const sluice::v1::Limits> current_;
  std::vector<std::function<void(const sluice::v1::Limits&)>> callbacks_;
  uint64_t updates_ = 0;
};

}  // namespace sluice::control
