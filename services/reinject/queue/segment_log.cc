// services/reinject/queue/segment_log.cc -- see segment_log.h.
#include "services/reinject/queue/segment_log.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "lib/observe/log.h"
#include "services/reinject/queue/queue_metrics.h"

namespace sluice::reinject {

SegmentLog::Mapping::~Mapping() {
  if (p_ != nullptr) ::munmap(const_cast<void*>(p_), n_);
}

SegmentLog::SegmentLog(const QueueLayout& layout, QueueMetrics* metrics, Options options)
    : layout_(layout), metrics_(metrics), options_(options) {
  if (options_.segment_bytes < 4096) options_.segment_bytes = 4096;
}

SegmentLog::~SegmentLog() = default;

std::string SegmentLog::NameOf(uint64_t number) { return absl::StrFormat("%016d", number); }

absl::Status SegmentLog::Open() {
  auto names = layout_.List(QueueDir::kSegments);
  if (!names.ok()) return names.status();
  std::lock_guard<std::mutex> lock(mu_);
  for (const std::string& name : *names) {
    uint64_t number = 0;
    if (name.size() != 16 || !absl::SimpleAtoi(name, &number) || number == 0) {
      observe::Warn("queue_segment_ignored").Kv("file", absl::StrCat("segments/", name));
      continue;
    }
    int fd = ::openat(layout_.fd(QueueDir::kSegments), name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return ErrnoStatus(errno, "open segments/" + name);
    struct stat st;
    if (::fstat(fd, &st) != 0) {
      int err = errno;
      ::close(fd);
      return ErrnoStatus(err, "stat segments/" + name);
    }
    Segment s;
    s.file = std::make_shared<SharedFd>(fd);
    s.size = s.synced = static_cast<uint64_t>(st.st_size);
    segments_.emplace(number, std::move(s));
  }
  return StartSegment();
}

absl::Status SegmentLog::StartSegment() {
  uint64_t number = segments_.empty() ? 1 : segments_.rbegin()->first + 1;
  std::string name = NameOf(number);
  int fd = ::openat(layout_.fd(QueueDir::kSegments), name.c_str(),
                    O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return ErrnoStatus(errno, "create segments/" + name);
  Segment s;
  s.file = std::make_shared<SharedFd>(fd);
  s.name_durable = false;
  segments_.emplace(number, std::move(s));
  active_ = number;
  return absl::OkStatus();
}

std::vector<uint64_t> SegmentLog::Segments() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<uint64_t> out;
  for (const auto& [n, s] : segments_) out.push_back(n);
  return out;
}

absl::StatusOr<SegmentLog::Mapping> SegmentLog::Map(uint64_t segment) const {
  std::shared_ptr<SharedFd> file;
  uint64_t size;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = segments_.find(segment);
    if (it == segments_.end()) return absl::NotFoundError(absl::StrCat("segment ", segment));
    file = it->second.file;
    size = it->second.size;
  }
  if (size == 0) return Mapping();
  void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, file->get(), 0);
  if (p == MAP_FAILED) return ErrnoStatus(errno, "mmap segments/" + NameOf(segment));
  return Mapping(p, size);
}

absl::StatusOr<std::vector<FrameLocation>> SegmentLog::Append(const std::vector<std::string_view>& frames,
                                                              const std::vector<bool>& hold_ref) {
  std::lock_guard<std::mutex> lock(mu_);
  if (active_ == 0 || segments_[active_].size >= options_.segment_bytes) {
    absl::Status s = StartSegment();
    if (!s.ok()) return s;
  }
  Segment& seg = segments_[active_];
  std::vector<FrameLocation> out;
  std::vector<iovec> iov;
  out.reserve(frames.size());
  iov.reserve(frames.size());
  uint64_t at = seg.size;
  for (std::string_view f : frames) {
    out.push_back(FrameLocation{active_, at, f.size()});
    iov.push_back(iovec{const_cast<char*>(f.data()), f.size()});
    at += f.size();
  }
  size_t done_iov = 0;
  uint64_t offset = seg.size;
  while (done_iov < iov.size()) {
    int count = static_cast<int>(std::min<size_t>(iov.size() - done_iov, IOV_MAX));
    ssize_t n = ::pwritev(seg.file->get(), iov.data() + done_iov, count, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = n < 0 ? errno : ENOSPC;
      // Nothing of a failed append may stay behind: cut the segment back to where it was
      // (and should that fail too, never append after the garbage: a new segment next).
      if (::ftruncate(seg.file->get(), static_cast<off_t>(out.front().offset)) == 0) {
        seg.size = out.front().offset;
      } else {
        seg.size = offset;
        active_ = 0;
      }
      return ErrnoStatus(err, "append to segments/" + NameOf(out.front().segment));
    }
    offset += static_cast<uint64_t>(n);
    size_t left = static_cast<size_t>(n);
    while (left > 0 && done_iov < iov.size()) {
      if (left >= iov[done_iov].iov_len) {
        left -= iov[done_iov].iov_len;
        ++done_iov;
      } else {
        iov[done_iov].iov_base = static_cast<char*>(iov[done_iov].iov_base) + left;
        iov[done_iov].iov_len -= left;
        left = 0;
      }
    }
  }
  seg.size = offset;
  for (size_t i = 0; i < frames.size(); ++i) {
    if (i < hold_ref.size() && hold_ref[i]) seg.refs += 1;
  }
  return out;
}

absl::Status SegmentLog::SyncFd(int fd) {
  auto start = std::chrono::steady_clock::now();
  int rc = ::fdatasync(fd);
  int err = errno;
  if (metrics_ != nullptr) {
    metrics_->fsync_duration->Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  if (rc != 0) return ErrnoStatus(err, "fdatasync");
  return absl::OkStatus();
}

absl::StatusOr<int> SegmentLog::Sync() {
  std::lock_guard<std::mutex> one_at_a_time(sync_mu_);
  struct Dirty {
    uint64_t number;
    std::shared_ptr<SharedFd> file;
    uint64_t size;
    bool name;
  };
  std::vector<Dirty> dirty;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [n, s] : segments_) {
      if (s.size > s.synced || !s.name_durable) dirty.push_back(Dirty{n, s.file, s.size, !s.name_durable});
    }
  }
  int fsyncs = 0;
  bool names = false;
  for (const Dirty& d : dirty) names = names || d.name;
  if (names) {
    // New segments' names first: their content is worthless without them.
    ++fsyncs;
    absl::Status s = SyncFd(layout_.fd(QueueDir::kSegments));
    if (!s.ok()) return s;
  }
  for (const Dirty& d : dirty) {
    ++fsyncs;
    absl::Status s = SyncFd(d.file->get());
    if (!s.ok()) return absl::Status(s.code(), absl::StrCat("segments/", NameOf(d.number), ": ", s.message()));
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (const Dirty& d : dirty) {
    auto it = segments_.find(d.number);
    if (it == segments_.end()) continue;
    it->second.synced = std::max(it->second.synced, d.size);
    if (d.name) it->second.name_durable = true;
  }
  syncs_ += static_cast<uint64_t>(fsyncs);
  return fsyncs;
}

bool SegmentLog::dirty() const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [n, s] : segments_) {
    if (s.size > s.synced || !s.name_durable) return true;
  }
  return false;
}

void SegmentLog::Ref(uint64_t segment, int64_t delta) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = segments_.find(segment);
  if (it != segments_.end()) it->second.refs += delta;
}

size_t SegmentLog::RemoveDead() {
  auto removable = [this] {
    std::lock_guard<std::mutex> lock(mu_);
    return !segments_.empty() && segments_.begin()->first != active_ && segments_.begin()->second.refs <= 0;
  };
  if (!removable()) return 0;
  // The remove frames that let go of it must be on disk before it goes.
  if (dirty() && !Sync().ok()) return 0;
  size_t removed = 0;
  std::lock_guard<std::mutex> lock(mu_);
  while (!segments_.empty() && segments_.begin()->first != active_ && segments_.begin()->second.refs <= 0) {
    uint64_t number = segments_.begin()->first;
    const Segment& s = segments_.begin()->second;
    if (s.size > s.synced) break;  // appended to since the sync above: next time
    std::string name = NameOf(number);
    if (::unlinkat(layout_.fd(QueueDir::kSegments), name.c_str(), 0) != 0 && errno != ENOENT) {
      observe::Warn("queue_segment_remove_failed").Kv("file", "segments/" + name).Kv("error", std::strerror(errno));
      break;
    }
    segments_.erase(segments_.begin());
    ++removed;
  }
  return removed;
}

void SegmentLog::RotateIfDead(uint64_t min_bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  if (active_ == 0) return;
  const Segment& s = segments_[active_];
  if (s.refs > 0 || s.size < min_bytes) return;
  (void)StartSegment();
}

absl::StatusOr<std::string> SegmentLog::Read(uint64_t segment, uint64_t offset, uint64_t size) const {
  auto file = File(segment);
  if (!file.ok()) return file.status();
  std::string out(size, '\0');
  uint64_t done = 0;
  while (done < size) {
    ssize_t n = ::pread((*file)->get(), out.data() + done, size - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(errno, "read segments/" + NameOf(segment));
    if (n == 0) return absl::DataLossError(absl::StrCat("segments/", NameOf(segment), " ends before offset ", offset + size));
    done += static_cast<uint64_t>(n);
  }
  return out;
}

absl::StatusOr<std::shared_ptr<SharedFd>> SegmentLog::File(uint64_t segment) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = segments_.find(segment);
  if (it == segments_.end()) return absl::NotFoundError(absl::StrCat("segment ", segment, " is gone"));
  return it->second.file;
}

int64_t SegmentLog::refs(uint64_t segment) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = segments_.find(segment);
  return it == segments_.end() ? 0 : it->second.refs;
}

uint64_t SegmentLog::oldest() const {
  std::lock_guard<std::mutex> lock(mu_);
  return segments_.empty() ? 0 : segments_.begin()->first;
}

uint64_t SegmentLog::active() const {
  std::lock_guard<std::mutex> lock(mu_);
  return active_;
}

size_t SegmentLog::count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return segments_.size();
}

uint64_t SegmentLog::syncs() const {
  std::lock_guard<std::mutex> lock(mu_);
  return syncs_;
}

}  // namespace sluice::reinject
