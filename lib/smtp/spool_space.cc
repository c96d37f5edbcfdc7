// lib/smtp/spool_space.cc -- see spool_space.h.
#include "lib/smtp/spool_space.h"

#include <sys/statvfs.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace sluice::smtp {
namespace {

std::string SpoolDir(std::string dir) {
  if (!dir.empty()) return dir;
  const char* tmp = std::getenv("TMPDIR");
  return tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
}

}  // namespace

SpoolSpace::SpoolSpace(std::string dir) : dir_(SpoolDir(std::move(dir))) {}

absl::StatusOr<uint64_t> SpoolSpace::FreeBytes() {
  std::lock_guard<std::mutex> lock(mu_);
  const auto now = std::chrono::steady_clock::now();
  if (read_ && now - read_at_ < std::chrono::seconds(1)) return free_;
  struct statvfs st;
  if (::statvfs(dir_.c_str(), &st) != 0) {
    return absl::UnavailableError(absl::StrCat("spool directory ", dir_, ": ", std::strerror(errno)));
  }
  free_ = static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
  read_at_ = now;
  read_ = true;
  return free_;
}

absl::Status SpoolSpace::Admit(uint64_t size_hint, uint64_t max_bytes, uint64_t min_free_bytes) {
  const int64_t held = held_.load(std::memory_order_relaxed);
  const uint64_t used = held > 0 ? static_cast<uint64_t>(held) : 0;
  if (max_bytes > 0 && used + size_hint > max_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat("spool full: ", used, " bytes spooled + ", size_hint,
                                                     " > spool_max_bytes ", max_bytes));
  }
  auto free = FreeBytes();
  if (!free.ok()) return free.status();
  if (*free < min_free_bytes + size_hint) {
    return absl::ResourceExhaustedError(absl::StrCat("spool disk full: ", *free, " bytes free - ", size_hint,
                                                     " < spool_min_free_bytes ", min_free_bytes));
  }
  return absl::OkStatus();
}

uint64_t SpoolMinFreeBytes(uint64_t configured, uint64_t message_size_limit) {
  return configured != 0 ? configured : message_size_limit + message_size_limit / 2;
}

}  // namespace sluice::smtp
