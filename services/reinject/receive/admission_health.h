// services/reinject/receive/admission_health.h
//
// The reinject stage's serving state follows the queue's admission: while the queue refuses
// new mail (over queue_max_bytes, or the disk below queue_min_free_bytes, answered with
// "452 4.3.1") the stage is UNAVAILABLE -- gRPC health NOT_SERVING and WatchStatus
// accepting=false, so upstream stages stop admitting -- and SERVING again as soon as the
// queue admits. Checked every `interval` (1 s) on a thread of its own (the check reads the
// disk's free space), and at once by Check().
//
// Never: clears an unavailability it did not declare; counts its checks as refusals.
#pragma once

#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "absl/time/time.h"
#include "lib/control/stage_runtime.h"
#include "services/reinject/queue/queue_store.h"

namespace sluice::reinject {

class AdmissionHealth {
 public:
  AdmissionHealth(const QueueStore& store, control::StageRuntime& runtime, absl::Duration interval);
  ~AdmissionHealth();  // Stop()
  AdmissionHealth(const AdmissionHealth&) = delete;
  AdmissionHealth& operator=(const AdmissionHealth&) = delete;

  void Start();
  void Stop();
  // Looks now and updates the stage; true while the queue admits mail.
  bool Check();

  // "queue full" / "disk full" from the store's refusal (the reason shown in Admin status).
  static std::string ReasonOf(const absl::Status& refusal);

 private:
  const QueueStore& store_;
  control::StageRuntime& runtime_;
  const absl::Duration interval_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool declared_ = false;  // we set the stage UNAVAILABLE (guarded by check_mu_)
  std::mutex check_mu_;
  std::thread thread_;
};

}  // namespace sluice::reinject
