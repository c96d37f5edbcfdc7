// services/reinject/queue/queue_id.h
//
// Queue ids: 16 characters of [0-9A-Z], time-ordered and unique across restarts and replicas.
// The first 10 characters are the microseconds since the Unix epoch in base 36 (fixed width,
// so ids sort by arrival until the year 2086); within one generator they strictly increase
// even when the wall clock stands still or steps back. The last 6 are a random number drawn
// once per generator (per process start), which keeps two replicas or two runs apart.
// The store also creates every data file with O_EXCL, so a collision can never overwrite.
//
// Never: reads the injectable test clock (a fake time would repeat ids across runs);
// produces characters outside [0-9A-Z] (ids are file names and appear in SMTP replies).
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>

namespace sluice::reinject {

class QueueIdGenerator {
 public:
  QueueIdGenerator();  // draws the random suffix (getrandom)
  explicit QueueIdGenerator(uint64_t suffix);  // tests: a fixed suffix

  // Thread-safe.
  std::string Next();

  // What the queue accepts as an id on disk and over gRPC: 1..32 characters of [0-9A-Z].
  static bool IsValid(std::string_view id);

  static constexpr size_t kLength = 16;

 private:
  std::mutex mu_;
  uint64_t last_micros_ = 0;
  std::string suffix_;  // 6 base-36 characters
};

}  // namespace sluice::reinject
