// services/reinject/queue/queue_layout.cc -- see queue_layout.h.
#include "services/reinject/queue/queue_layout.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "services/reinject/queue/queue_metrics.h"

namespace sluice::reinject {

absl::Status ErrnoStatus(int err, std::string_view what) {
  std::string message = absl::StrCat(std::string(what), ": ", std::strerror(err));
  switch (err) {
    case ENOSPC:
    case EDQUOT:
      return absl::ResourceExhaustedError(message);
    case ENOENT:
      return absl::NotFoundError(message);
    case EEXIST:
      return absl::AlreadyExistsError(message);
    default:
      return absl::InternalError(message);
  }
}

const char* QueueDirName(QueueDir dir) {
  switch (dir) {
    case QueueDir::kSegments: return "segments";
    case QueueDir::kLarge: return "large";
    case QueueDir::kCorrupt: return "corrupt";
  }
  return "segments";
}

const char* QueueStateName(sluice::v1::QueueState state) {
  switch (state) {
    case sluice::v1::INCOMING: return "incoming";
    case sluice::v1::ACTIVE: return "active";
    case sluice::v1::DEFERRED: return "deferred";
    case sluice::v1::HOLD: return "hold";
    case sluice::v1::CORRUPT: return "corrupt";
    default: return "unspecified";
  }
}

absl::StatusOr<std::unique_ptr<QueueLayout>> QueueLayout::Open(const std::string& root,
                                                               QueueMetrics* metrics) {
  if (root.empty()) return absl::InvalidArgumentError("queue_dir is empty");
  // mkdir -p of the root itself.
  for (size_t pos = 1; pos <= root.size(); ++pos) {
    if (pos == root.size() || root[pos] == '/') {
      std::string prefix = root.substr(0, pos);
      if (::mkdir(prefix.c_str(), 0700) != 0 && errno != EEXIST) {
        return ErrnoStatus(errno, absl::StrCat("mkdir ", prefix));
      }
    }
  }
  std::unique_ptr<QueueLayout> layout(new QueueLayout(root, metrics));
  int root_fd = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (root_fd < 0) return ErrnoStatus(errno, absl::StrCat("open ", root));
  bool created = false;
  absl::Status status;
  for (int i = 0; i < kQueueDirCount && status.ok(); ++i) {
    const char* name = QueueDirName(static_cast<QueueDir>(i));
    if (::mkdirat(root_fd, name, 0700) == 0) {
      created = true;
    } else if (errno != EEXIST) {
      status = ErrnoStatus(errno, absl::StrCat("mkdir ", root, "/", name));
      break;
    }
    layout->fds_[i] = ::openat(root_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (layout->fds_[i] < 0) status = ErrnoStatus(errno, absl::StrCat("open ", root, "/", name));
  }
  // New subdirectories must survive a crash before the first message relies on them.
  if (status.ok() && created && ::fsync(root_fd) != 0) status = ErrnoStatus(errno, "fsync " + root);
  ::close(root_fd);
  if (!status.ok()) return status;
  return layout;
}

QueueLayout::~QueueLayout() {
  for (int fd : fds_) {
    if (fd >= 0) ::close(fd);
  }
}

std::string QueueLayout::Path(QueueDir dir, std::string_view name) const {
  return absl::StrCat(root_, "/", QueueDirName(dir), "/", std::string(name));
}

absl::Status QueueLayout::Sync(int fd) const {
  auto start = std::chrono::steady_clock::now();
  int rc = ::fsync(fd);
  int err = errno;
  if (metrics_ != nullptr) {
    metrics_->fsync_duration->Observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  if (rc != 0) return ErrnoStatus(err, "fsync");
  return absl::OkStatus();
}

absl::Status QueueLayout::Unlink(QueueDir dir, std::string_view name) const {
  std::string n(name);
  if (::unlinkat(fd(dir), n.c_str(), 0) != 0 && errno != ENOENT) {
    return ErrnoStatus(errno, absl::StrCat("unlink ", QueueDirName(dir), "/", n));
  }
  return absl::OkStatus();
}

bool QueueLayout::Exists(QueueDir dir, std::string_view name) const {
  struct stat st;
  return ::fstatat(fd(dir), std::string(name).c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
}

absl::StatusOr<uint64_t> QueueLayout::FileSize(QueueDir dir, std::string_view name) const {
  struct stat st;
  std::string n(name);
  if (::fstatat(fd(dir), n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    return ErrnoStatus(errno, absl::StrCat("stat ", QueueDirName(dir), "/", n));
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(QueueDirName(dir), "/", n, " is not a file"));
  }
  return static_cast<uint64_t>(st.st_size);
}

absl::StatusOr<std::vector<std::string>> QueueLayout::List(QueueDir dir) const {
  int fd2 = ::openat(fd(dir), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd2 < 0) return ErrnoStatus(errno, absl::StrCat("open ", QueueDirName(dir)));
  DIR* d = ::fdopendir(fd2);
  if (d == nullptr) {
    int err = errno;
    ::close(fd2);
    return ErrnoStatus(err, absl::StrCat("opendir ", QueueDirName(dir)));
  }
  std::vector<std::string> names;
  while (struct dirent* e = ::readdir(d)) {
    std::string_view n(e->d_name);
    if (n == "." || n == "..") continue;
    names.emplace_back(n);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

absl::StatusOr<std::string> QueueLayout::ReadFile(QueueDir dir, std::string_view name,
                                                  size_t max_bytes) const {
  std::string n(name);
  int fd2 = ::openat(fd(dir), n.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd2 < 0) return ErrnoStatus(errno, absl::StrCat("open ", QueueDirName(dir), "/", n));
  std::string out;
  char buf[8192];
  while (out.size() < max_bytes) {
    ssize_t got = ::read(fd2, buf, std::min(sizeof buf, max_bytes - out.size()));
    if (got < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd2);
      return ErrnoStatus(err, absl::StrCat("read ", QueueDirName(dir), "/", n));
    }
    if (got == 0) break;
    out.append(buf, static_cast<size_t>(got));
  }
  ::close(fd2);
  return out;
}


}  // namespace sluice::reinject

namespace sluice::reinject {

absl::Status QueueLayout::WriteNewFile(QueueDir dir, std::string_view name, std::string_view bytes) const {
  std::string n(name);
  int fd = ::openat(this->fd(dir), n.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return ErrnoStatus(errno, absl::StrCat("create ", QueueDirName(dir), "/", n));
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t w = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) {
      int err = errno;
      ::close(fd);
      ::unlinkat(this->fd(dir), n.c_str(), 0);
      return ErrnoStatus(err, absl::StrCat("write ", QueueDirName(dir), "/", n));
    }
    done += static_cast<size_t>(w);
  }
  absl::Status s = Sync(fd);
  ::close(fd);
  if (s.ok()) s = Sync(this->fd(dir));
  return s;
}

}  // namespace sluice::reinject
