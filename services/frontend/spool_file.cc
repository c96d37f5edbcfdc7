// services/frontend/spool_file.cc -- see spool_file.h.
#include "services/frontend/spool_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"

namespace sluice::frontend {
namespace {

absl::Status Errno(std::string_view what) {
  return absl::InternalError(absl::StrCat(absl::string_view(what.data(), what.size()), ": ", std::strerror(errno)));
}

}  // namespace

absl::StatusOr<SpoolFile> SpoolFile::Create(const std::string& dir, std::atomic<int64_t>* disk_bytes) {
  std::string base = dir;
  if (base.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    base = tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
  }
  std::string path = absl::StrCat(base, "/sluice-frontend-XXXXXX");
  std::vector<char> name(path.begin(), path.end());
  name.push_back('\0');
  int fd = ::mkostemp(name.data(), O_CLOEXEC);
  if (fd < 0) return Errno(absl::StrCat("creating a spool file in ", base));
  // Unlinked at once: no name to clean up, the space is freed when the descriptor closes.
  ::unlink(name.data());
  SpoolFile f;
  f.fd_ = fd;
  f.disk_bytes_ = disk_bytes;
  return f;
}

SpoolFile& SpoolFile::operator=(SpoolFile&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    if (disk_bytes_ != nullptr) disk_bytes_->fetch_sub(static_cast<int64_t>(size_), std::memory_order_relaxed);
    fd_ = other.fd_;
    size_ = other.size_;
    disk_bytes_ = other.disk_bytes_;
    other.fd_ = -1;
    other.disk_bytes_ = nullptr;
  }
  return *this;
}

SpoolFile::~SpoolFile() {
  if (fd_ >= 0) ::close(fd_);
  if (disk_bytes_ != nullptr) disk_bytes_->fetch_sub(static_cast<int64_t>(size_), std::memory_order_relaxed);
}

absl::Status SpoolFile::Append(std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::pwrite(fd_, data.data(), data.size(), static_cast<off_t>(size_));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Errno("writing the spool file");
    }
    size_ += static_cast<uint64_t>(n);
    if (disk_bytes_ != nullptr) disk_bytes_->fetch_add(n, std::memory_order_relaxed);
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

absl::Status SpoolFile::ReadAt(uint64_t offset, size_t max, std::string& out) const {
  out.resize(max);
  for (;;) {
    ssize_t n = ::pread(fd_, out.data(), max, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      out.clear();
      return Errno("reading the spool file");
    }
    out.resize(static_cast<size_t>(n));
    return absl::OkStatus();
  }
}

}  // namespace sluice::frontend
