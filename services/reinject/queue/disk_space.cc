// services/reinject/queue/disk_space.cc -- see disk_space.h.
#include "services/reinject/queue/disk_space.h"

#include <sys/statvfs.h>

#include <cerrno>

#include "services/reinject/queue/queue_layout.h"

namespace sluice::reinject {
namespace {

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

DiskSpace::DiskSpace(int fd, absl::Duration refresh_interval)
    : fd_(fd), interval_(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                   absl::ToChronoNanoseconds(refresh_interval))) {}

absl::StatusOr<uint64_t> DiskSpace::Refresh() {
  std::lock_guard<std::mutex> lock(refresh_mu_);
  struct statvfs sv;
  reads_.fetch_add(1);
  // Taken before the read: what is written while it runs may or may not be in its figure,
  // and counting it twice errs on the safe side.
  uint64_t written_before = written_.load();
  if (::fstatvfs(fd_, &sv) != 0) {
    last_errno_.store(errno);
    read_at_ns_.store(NowNs());
    return ErrnoStatus(errno, "statvfs of the queue directory");
  }
  last_errno_.store(0);
  free_at_read_.store(static_cast<uint64_t>(sv.f_bavail) * static_cast<uint64_t>(sv.f_frsize));
  written_.fetch_sub(written_before);
  read_at_ns_.store(NowNs());
  return free_at_read_.load();
}

absl::StatusOr<uint64_t> DiskSpace::FreeBytes() {
  int64_t read_at = read_at_ns_.load();
  if (read_at == 0 || NowNs() - read_at >= std::chrono::duration_cast<std::chrono::nanoseconds>(interval_).count()) {
    std::unique_lock<std::mutex> lock(refresh_mu_, std::try_to_lock);
    if (lock.owns_lock()) {
      lock.unlock();
      // Someone else may have refreshed between the check and here; reading twice is harmless.
      auto fresh = Refresh();
      if (!fresh.ok()) return fresh.status();
    } else if (read_at == 0) {
      // The first read is under way on another thread: wait for it.
      std::lock_guard<std::mutex> wait(refresh_mu_);
    }
  }
  if (int err = last_errno_.load(); err != 0) return ErrnoStatus(err, "statvfs of the queue directory");
  uint64_t free = free_at_read_.load();
  uint64_t written = written_.load();
  return written >= free ? 0 : free - written;
}

}  // namespace sluice::reinject
