// services/frontend/spool_file.h
//
// The temporary file a speed_adjust transaction spools its message into (Postfix
// smtpd_proxy_options = speed_adjust): created under spool_dir (or $TMPDIR, or /tmp) and
// unlinked at once, so it vanishes with the descriptor whatever happens to the process;
// appended while the client sends, then read back in chunks for the filter.
//
// Never: leaves a file name behind; holds more than one chunk of the message in memory.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace sluice::frontend {

class SpoolFile {
 public:
  // `dir` empty: $TMPDIR, else /tmp.
  // `disk_bytes`: the stage's count of spooled bytes (lib/smtp/spool_space.h), or null.
  static absl::StatusOr<SpoolFile> Create(const std::string& dir, std::atomic<int64_t>* disk_bytes = nullptr);
  SpoolFile() = default;
  SpoolFile(SpoolFile&& other) noexcept : fd_(other.fd_), size_(other.size_), disk_bytes_(other.disk_bytes_) {
    other.fd_ = -1;
    other.disk_bytes_ = nullptr;
  }
  SpoolFile& operator=(SpoolFile&& other) noexcept;
  ~SpoolFile();

  absl::Status Append(std::string_view data);
  // Reads up to `max` bytes at `offset` into `out` (replacing it); empty at the end.
  absl::Status ReadAt(uint64_t offset, size_t max, std::string& out) const;
  uint64_t size() const { return size_; }
  bool open() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
  uint64_t size_ = 0;
  std::atomic<int64_t>* disk_bytes_ = nullptr;  // size_ is counted there while open
};

}  // namespace sluice::frontend
