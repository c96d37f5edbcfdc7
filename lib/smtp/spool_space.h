// lib/smtp/spool_space.h
//
// The room left in a stage's spool directory (the frontend's speed_adjust files, the
// filter-bridge's content beyond spool_memory_bytes), asked before a transaction's content
// is taken, so a spool running full answers "452 4.3.1" instead of getting the pod evicted
// by its emptyDir sizeLimit (every session cut, no drain). Two bounds, as reinject's queue
// admission: the bytes the stage's spool files hold now (each file adds what it writes to
// held() and takes it off when it closes) against spool_max_bytes -- the emptyDir budget,
// which the file system's free space does not show -- and the file system's free space
// against spool_min_free_bytes.
//
// Thread-safe; Admit costs two atomic loads while the free-space figure is fresh.
// Never: calls statvfs more than once per second; admits past either bound.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace sluice::smtp {

class SpoolSpace {
 public:
  // `dir`: the spool directory; "" means $TMPDIR, else /tmp (where the spools then go).
  explicit SpoolSpace(std::string dir);

  // OK, or ResourceExhausted naming the bound: `size_hint` more bytes (MAIL SIZE=, or 0)
  // would pass `max_bytes` (0: no budget) or leave less than `min_free_bytes` free.
  absl::Status Admit(uint64_t size_hint, uint64_t max_bytes, uint64_t min_free_bytes);

  // What the spool files hold now; each adds its bytes and takes them off when it closes.
  std::atomic<int64_t>& held() { return held_; }
  const std::string& dir() const { return dir_; }

 private:
  absl::StatusOr<uint64_t> FreeBytes();

  const std::string dir_;
  std::atomic<int64_t> held_{0};
  std::mutex mu_;
  std::chrono::steady_clock::time_point read_at_{};
  uint64_t free_ = 0;
  bool read_ = false;
};

// spool_min_free_bytes in force: as reinject's queue_min_free_bytes, 0 means 1.5 x the
// message size limit.
uint64_t SpoolMinFreeBytes(uint64_t configured, uint64_t message_size_limit);

}  // namespace sluice::smtp
