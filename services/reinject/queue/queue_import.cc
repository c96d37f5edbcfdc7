// services/reinject/queue/queue_import.cc -- see queue_import.h.
#include "services/reinject/queue/queue_import.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "lib/observe/log.h"
#include "services/reinject/queue/queue_frame.h"
#include "services/reinject/queue/queue_id.h"
#include "services/reinject/queue/queue_recovery.h"
#include "services/reinject/queue/queue_store.h"

namespace sluice::reinject {
namespace {

struct OldStateDir {
  const char* name;
  sluice::v1::QueueState state;
};
constexpr OldStateDir kOldStateDirs[] = {{"incoming", sluice::v1::INCOMING},
                                         {"active", sluice::v1::ACTIVE},
                                         {"deferred", sluice::v1::DEFERRED},
                                         {"hold", sluice::v1::HOLD}};
// Directories of the earlier layout that go once the import is durable (corrupt/ stays: both
// layouts have it).
constexpr const char* kOldDirs[] = {"incoming", "active", "deferred", "hold", "data", "tmp"};
constexpr size_t kMaxOldRecordBytes = (16 << 20) + 12;
constexpr size_t kInFlight = 64;  // commits waiting for their sync at once

// The earlier layout's record file: "SQR1", payload length, CRC-32 of the payload, payload.
absl::StatusOr<sluice::v1::QueueRecord> DecodeOldRecord(std::string_view bytes) {
  auto le32 = [](const char* p) {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(static_cast<unsigned char>(p[i])) << (8 * i);
    return v;
  };
  if (bytes.size() < 12 || bytes.substr(0, 4) != "SQR1") return absl::DataLossError("record frame missing or truncated");
  std::string_view payload = bytes.substr(12);
  if (payload.size() != le32(bytes.data() + 4)) return absl::DataLossError("record length mismatch");
  uLong crc = crc32(crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(payload.data()),
                    static_cast<uInt>(payload.size()));
  if (static_cast<uint32_t>(crc) != le32(bytes.data() + 8)) return absl::DataLossError("record checksum mismatch");
  sluice::v1::QueueRecord record;
  if (!record.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    return absl::DataLossError("record does not parse");
  }
  return record;
}

// The earlier layout's directories under the queue root, opened once.
class OldLayout {
 public:
  explicit OldLayout(const std::string& root) : root_(root) {
    root_fd_ = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  }
  ~OldLayout() {
    if (root_fd_ >= 0) ::close(root_fd_);
  }
  int root_fd() const { return root_fd_; }
  bool HasDir(const char* dir) const {
    struct stat st;
    return root_fd_ >= 0 && ::fstatat(root_fd_, dir, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
  }
  absl::StatusOr<std::vector<std::string>> List(const char* dir) const {
    std::vector<std::string> names;
    int fd = ::openat(root_fd_, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
      if (errno == ENOENT) return names;
      return ErrnoStatus(errno, absl::StrCat("open ", root_, "/", dir));
    }
    DIR* d = ::fdopendir(fd);
    if (d == nullptr) {
      ::close(fd);
      return ErrnoStatus(errno, absl::StrCat("opendir ", root_, "/", dir));
    }
    while (struct dirent* e = ::readdir(d)) {
      std::string_view n(e->d_name);
      if (n != "." && n != "..") names.emplace_back(n);
    }
    ::closedir(d);
    std::sort(names.begin(), names.end());
    return names;
  }
  int Open(const char* dir, const std::string& name) const {
    return ::openat(root_fd_, absl::StrCat(dir, "/", name).c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  }
  // The whole file (up to max_bytes + 1, so that "too long" shows).
  absl::StatusOr<std::string> Read(const char* dir, const std::string& name, size_t max_bytes) const {
    int fd = Open(dir, name);
    if (fd < 0) return ErrnoStatus(errno, absl::StrCat(dir, "/", name));
    std::string out;
    char buf[65536];
    while (out.size() <= max_bytes) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        int err = errno;
        ::close(fd);
        return ErrnoStatus(err, absl::StrCat("read ", dir, "/", name));
      }
      if (n == 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    ::close(fd);
    return out;
  }
  absl::StatusOr<uint64_t> Size(const char* dir, const std::string& name) const {
    struct stat st;
    if (::fstatat(root_fd_, absl::StrCat(dir, "/", name).c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      return ErrnoStatus(errno, absl::StrCat("stat ", dir, "/", name));
    }
    if (!S_ISREG(st.st_mode)) return absl::FailedPreconditionError(absl::StrCat(dir, "/", name, " is not a file"));
    return static_cast<uint64_t>(st.st_size);
  }
  // Removes every file of `dir`, fsyncs it, removes it. Counts the files.
  absl::Status RemoveDir(const char* dir, uint64_t& removed) const {
    auto names = List(dir);
    if (!names.ok()) return names.status();
    for (const std::string& n : *names) {
      if (::unlinkat(root_fd_, absl::StrCat(dir, "/", n).c_str(), 0) != 0 && errno != ENOENT) {
        return ErrnoStatus(errno, absl::StrCat("unlink ", dir, "/", n));
      }
      ++removed;
    }
    int fd = ::openat(root_fd_, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
      int rc = ::fsync(fd);
      int err = errno;
      ::close(fd);
      if (rc != 0) return ErrnoStatus(err, absl::StrCat("fsync ", dir));
    }
    if (::unlinkat(root_fd_, dir, AT_REMOVEDIR) != 0 && errno != ENOENT) {
      return ErrnoStatus(errno, absl::StrCat("rmdir ", dir));
    }
    return absl::OkStatus();
  }

 private:
  std::string root_;
  int root_fd_ = -1;
};

// Commits in flight: how many, and the first error.
class Pending {
 public:
  void Add() {
    std::lock_guard<std::mutex> lock(mu_);
    ++count_;
  }
  // Returns how many have completed so far.
  uint64_t Done(const absl::Status& s) {
    std::lock_guard<std::mutex> lock(mu_);
    --count_;
    if (!s.ok() && error_.ok()) error_ = s;
    cv_.notify_all();
    return ++completed_;
  }
  // Waits until at most `left` are in flight; the first error so far.
  absl::Status WaitFor(size_t left) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return count_ <= left; });
    return error_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  size_t count_ = 0;
  uint64_t completed_ = 0;
  absl::Status error_;
};

}  // namespace

bool HasEarlierLayout(const std::string& queue_dir) {
  OldLayout old(queue_dir);
  for (const char* dir : kOldDirs) {
    if (old.HasDir(dir)) return true;
  }
  return false;
}

// Puts what is known of an old entry into corrupt/ in today's form: a record frame whose
// last_error says why, the data inline. Returns the name in corrupt/ ("" when an earlier start
// put it there already).
std::string QueueStore::ImportToCorrupt(const std::string& id, sluice::v1::QueueRecord record, const std::string& data,
                                        std::string_view why, bool* failed) {
  *failed = false;
  if (layout_->Exists(QueueDir::kCorrupt, id)) {
    auto bytes = layout_->ReadFile(QueueDir::kCorrupt, id, 4);
    if (bytes.ok() && *bytes == "SQF1") return "";  // converted by a start that died later
  }
  // The id may be live here too (a duplicate of an entry just imported): <id>.1, .2, ...
  std::string name = id;
  for (int n = 1;; ++n) {
    bool taken;
    {
      std::lock_guard<std::mutex> lock(mu_);
      taken = index_.Find(name) != nullptr;
    }
    if (!taken && !layout_->Exists(QueueDir::kCorrupt, name)) break;
    name = absl::StrCat(id, ".", n);
  }
  if (record.queue_id().empty()) record.set_queue_id(id);
  record.set_last_error(absl::StrCat("earlier queue layout: ", std::string(why)));
  sluice::v1::QueueLogRecord log;
  *log.mutable_record() = std::move(record);
  absl::Status s = layout_->WriteNewFile(QueueDir::kCorrupt, name, EncodeRecordFrame(log, data));
  observe::Warn("queue_corrupt")
      .Kv("queue_id", id)
      .Kv("moved_to", absl::StrCat("corrupt/", name))
      .Kv("reason", absl::StrCat("earlier queue layout: ", std::string(why)))
      .Kv("move_error", MessageOf(s));
  if (!s.ok()) {
    *failed = true;
    return "";
  }
  IndexEntry e;
  e.state = sluice::v1::CORRUPT;
  e.file = name;
  e.size_bytes = data.size();
  std::lock_guard<std::mutex> lock(mu_);
  index_.Insert(name, std::move(e));
  UpdateGauges();
  return name;
}

absl::StatusOr<ImportReport> ImportEarlierLayout(QueueStore& store) {
  ImportReport report;
  const std::string& root = store.queue_dir();
  if (!HasEarlierLayout(root)) return report;
  report.found = true;
  OldLayout old(root);
  if (old.root_fd() < 0) return ErrnoStatus(errno, "open " + root);
  observe::Info("queue_import_begin").Kv("queue_dir", root);

  Pending pending;
  // Whatever ends the import, the commits in flight report to `pending` first.
  absl::Cleanup wait_for_commits = [&pending] { (void)pending.WaitFor(0); };
  absl::flat_hash_set<std::string> seen;  // ids taken from a state directory in this run
  absl::Status failure;
  auto to_corrupt = [&](const std::string& id, sluice::v1::QueueRecord record, const std::string& data,
                        std::string_view why) {
    bool failed = false;
    std::string name = store.ImportToCorrupt(id, std::move(record), data, why, &failed);
    if (failed && failure.ok()) failure = absl::InternalError("could not put " + id + " in corrupt/");
    if (!name.empty()) ++report.to_corrupt;
  };

  for (const OldStateDir& dir : kOldStateDirs) {
    auto names = old.List(dir.name);
    if (!names.ok()) return names.status();
    for (const std::string& id : *names) {
      auto bytes = old.Read(dir.name, id, kMaxOldRecordBytes);
      absl::StatusOr<sluice::v1::QueueRecord> record =
          bytes.ok() ? DecodeOldRecord(*bytes) : absl::StatusOr<sluice::v1::QueueRecord>(bytes.status());
      std::string why;
      if (!QueueIdGenerator::IsValid(id)) {
        why = "file name is not a queue id";
      } else if (seen.contains(id)) {
        why = absl::StrCat("a record of this id is in another state directory (", dir.name, "/ too)");
      } else if (!record.ok()) {
        why = std::string(MessageOf(record.status()));
      } else if (record->queue_id() != id) {
        why = absl::StrCat("record names queue id ", record->queue_id());
      } else if (record->recipients_size() == 0) {
        why = "record has no recipient";
      } else {
        auto size = old.Size("data", id);
        if (!size.ok()) {
          why = absl::StrCat("data file: ", size.status().message());
        } else if (*size != record->size_bytes()) {
          why = absl::StrCat("data file has ", *size, " bytes, record says ", record->size_bytes());
        }
      }
      if (!why.empty()) {
        std::string data;
        if (QueueIdGenerator::IsValid(id)) {
          auto read = old.Read("data", id, size_t{1} << 30);
          if (read.ok()) data = std::move(*read);
        }
        to_corrupt(id, record.ok() ? *record : sluice::v1::QueueRecord(), data, why);
        continue;
      }
      seen.insert(id);
      record->set_state(dir.state);
      auto writer = store.BeginIngest(id, QueueStore::IngestOrigin::kImport, /*retry=*/false);
      if (absl::IsAlreadyExists(writer.status())) {
        ++report.already_in_log;  // committed by a start that died before removing the old files
        continue;
      }
      if (!writer.ok()) return writer.status();
      int fd = old.Open("data", id);
      if (fd < 0) return ErrnoStatus(errno, "open data/" + id);
      absl::Cleanup close_fd = [fd] { ::close(fd); };
      char buf[65536];
      for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return ErrnoStatus(errno, "read data/" + id);
        if (n == 0) break;
        absl::Status appended = (*writer)->Append(std::string_view(buf, static_cast<size_t>(n)));
        if (!appended.ok()) return appended;
      }
      pending.Add();
      std::string state = QueueStateName(dir.state);
      (*writer)->CommitWhole(*std::move(record), [&pending, &store, id, state](absl::Status s) {
        observe::Info("queue_imported").Kv("queue_id", id).Kv("state", state).Kv("error", MessageOf(s));
        uint64_t n = pending.Done(s);
        if (store.options_.import_hook) store.options_.import_hook("committed", n);
      });
      ++report.imported;
      absl::Status so_far = pending.WaitFor(kInFlight - 1);
      if (!so_far.ok()) {
        (void)pending.WaitFor(0);
        return so_far;
      }
    }
  }
  // The earlier recovery's corrupt/ files, with their data, in today's form.
  auto corrupt = store.layout_->List(QueueDir::kCorrupt);
  if (!corrupt.ok()) return corrupt.status();
  for (const std::string& name : *corrupt) {
    auto head = store.layout_->ReadFile(QueueDir::kCorrupt, name, kMaxOldRecordBytes);
    if (!head.ok() || head->substr(0, 4) == "SQF1") continue;  // today's form already
    std::string id = name.substr(0, name.find('.'));
    if (!QueueIdGenerator::IsValid(id)) continue;  // a damaged segment range of today's recovery
    auto data = old.Read("data", id, size_t{1} << 30);
    if (!data.ok()) continue;  // nothing more to keep than the file itself
    auto record = DecodeOldRecord(*head);
    sluice::v1::QueueRecord r = record.ok() ? *record : sluice::v1::QueueRecord();
    if (r.queue_id().empty()) r.set_queue_id(id);
    r.set_last_error(absl::StrCat("earlier queue layout: set aside by its recovery",
                                  record.ok() ? std::string() : absl::StrCat(" (", record.status().message(), ")")));
    sluice::v1::QueueLogRecord log;
    *log.mutable_record() = std::move(r);
    // Written beside, then renamed over: the old file is replaced whole or not at all.
    const std::string tmp = ".import-" + name;
    absl::Status s = store.layout_->WriteNewFile(QueueDir::kLarge, tmp, EncodeRecordFrame(log, *data));
    if (s.ok() && ::renameat(store.layout_->fd(QueueDir::kLarge), tmp.c_str(), store.layout_->fd(QueueDir::kCorrupt),
                             name.c_str()) != 0) {
      s = ErrnoStatus(errno, "rename into corrupt/" + name);
    }
    if (s.ok()) s = store.layout_->SyncDir(QueueDir::kCorrupt);
    if (!s.ok()) return s;
    ++report.to_corrupt;
    observe::Info("queue_corrupt_converted").Kv("file", absl::StrCat("corrupt/", name)).Kv("bytes", data->size());
    std::lock_guard<std::mutex> lock(store.mu_);
    store.index_.Update(name, [&](IndexEntry& e) { e.size_bytes = data->size(); });
  }

  // Every commit synced before an old file goes.
  absl::Status committed = pending.WaitFor(0);
  if (!committed.ok()) return committed;
  if (!failure.ok()) return failure;
  if (store.options_.import_hook) store.options_.import_hook("removing", report.imported);
  for (const char* dir : kOldDirs) {
    absl::Status s = old.RemoveDir(dir, report.files_removed);
    if (!s.ok()) return s;
  }
  if (::fsync(old.root_fd()) != 0) return ErrnoStatus(errno, "fsync " + root);
  observe::Info("queue_import_done")
      .Kv("queue_dir", root)
      .Kv("imported", report.imported)
      .Kv("already_in_log", report.already_in_log)
      .Kv("corrupt", report.to_corrupt)
      .Kv("old_files_removed", report.files_removed);
  return report;
}

}  // namespace sluice::reinject
