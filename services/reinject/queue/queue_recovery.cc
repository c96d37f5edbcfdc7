// services/reinject/queue/queue_recovery.cc -- see queue_recovery.h.
#include "services/reinject/queue/queue_recovery.h"

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "lib/observe/log.h"
#include "services/reinject/queue/proto_time.h"
#include "services/reinject/queue/queue_id.h"
#include "services/reinject/queue/queue_record_file.h"

namespace sluice::reinject {
namespace {

// Why the record of `id` in `dir` cannot be queued, or OK.
absl::Status CheckEntry(const QueueLayout& layout, QueueDir dir, const std::string& id,
                        sluice::v1::QueueRecord* record) {
  if (!QueueIdGenerator::IsValid(id)) return absl::DataLossError("file name is not a queue id");
  auto read = ReadRecord(layout, dir, id);
  if (!read.ok()) return read.status();
  *record = std::move(*read);
  if (record->queue_id() != id) {
    return absl::DataLossError(absl::StrCat("record names queue id ", record->queue_id()));
  }
  if (record->recipients_size() == 0) return absl::DataLossError("record has no recipient");
  auto size = layout.FileSize(QueueDir::kData, id);
  if (!size.ok()) return absl::DataLossError(absl::StrCat("data file: ", size.status().message()));
  if (*size != record->size_bytes()) {
    return absl::DataLossError(
        absl::StrCat("data file has ", *size, " bytes, record says ", record->size_bytes()));
  }
  return absl::OkStatus();
}

}  // namespace

std::string DataNameOf(std::string_view record_file) {
  return std::string(record_file.substr(0, record_file.find('.')));
}

absl::StatusOr<std::string> MoveToCorrupt(const QueueLayout& layout, QueueDir from,
                                          const std::string& id, std::string_view reason,
                                          bool duplicate) {
  std::string name = duplicate ? absl::StrCat(id, ".1") : id;
  for (int n = duplicate ? 2 : 1; layout.Exists(QueueDir::kCorrupt, name); ++n) {
    name = absl::StrCat(id, ".", n);
  }
  absl::Status s = layout.Rename(from, id, QueueDir::kCorrupt, name);
  if (s.ok()) s = layout.SyncDir(QueueDir::kCorrupt);
  observe::Warn("queue_corrupt")
      .Kv("queue_id", id)
      .Kv("from", QueueDirName(from))
      .Kv("moved_to", absl::StrCat("corrupt/", name))
      .Kv("reason", reason)
      .Kv("move_error", s.ok() ? std::string() : std::string(MessageOf(s)));
  if (!s.ok()) return s;
  return name;
}

absl::StatusOr<RecoveryReport> RecoverQueue(const QueueLayout& layout, QueueIndex& index) {
  RecoveryReport report;

  auto tmp = layout.List(QueueDir::kTmp);
  if (!tmp.ok()) return tmp.status();
  for (const std::string& name : *tmp) {
    if (layout.Unlink(QueueDir::kTmp, name).ok()) {
      ++report.tmp_deleted;
      observe::Info("queue_tmp_deleted").Kv("file", absl::StrCat("tmp/", name));
    }
  }

  absl::flat_hash_set<std::string> referenced;  // data files some record refers to
  for (QueueDir dir : {QueueDir::kIncoming, QueueDir::kActive, QueueDir::kDeferred, QueueDir::kHold}) {
    auto names = layout.List(dir);
    if (!names.ok()) return names.status();
    for (const std::string& id : *names) {
      sluice::v1::QueueRecord record;
      absl::Status problem = CheckEntry(layout, dir, id, &record);
      bool duplicate = problem.ok() && index.Find(id) != nullptr;
      if (duplicate) problem = absl::AlreadyExistsError("a record of this id is in another state directory");
      if (!problem.ok()) {
        auto moved = MoveToCorrupt(layout, dir, id, MessageOf(problem), duplicate);
        ++report.moved_to_corrupt;
        if (!moved.ok()) {
          // It stays where it is; still keep its data and account for it as corrupt.
          referenced.insert(DataNameOf(id));
          continue;
        }
        continue;  // indexed by the corrupt/ scan below
      }
      IndexEntry e;
      e.state = StateOfDir(dir);
      e.file = id;
      e.size_bytes = record.size_bytes();
      e.arrived_at = FromProtoTime(record.arrived_at());
      if (dir == QueueDir::kDeferred && record.has_next_attempt_at()) e.due_at = FromProtoTime(record.next_attempt_at());
      if (dir == QueueDir::kHold) e.hold_reason = record.hold_reason();
      index.Insert(id, std::move(e));
      referenced.insert(id);
      ++report.recovered[static_cast<size_t>(StateOfDir(dir))];
    }
  }

  auto corrupt = layout.List(QueueDir::kCorrupt);
  if (!corrupt.ok()) return corrupt.status();
  for (const std::string& name : *corrupt) {
    IndexEntry e;
    e.state = sluice::v1::CORRUPT;
    e.file = name;
    std::string data = DataNameOf(name);
    referenced.insert(data);
    if (index.Find(name) != nullptr) {
      observe::Warn("queue_corrupt_name_clash").Kv("file", absl::StrCat("corrupt/", name));
      continue;
    }
    auto size = layout.FileSize(QueueDir::kData, data);
    if (size.ok()) e.size_bytes = *size;
    index.Insert(name, std::move(e));
    ++report.recovered[sluice::v1::CORRUPT];
  }

  auto data = layout.List(QueueDir::kData);
  if (!data.ok()) return data.status();
  for (const std::string& name : *data) {
    if (referenced.contains(name)) continue;
    if (layout.Unlink(QueueDir::kData, name).ok()) {
      ++report.orphan_data_deleted;
      observe::Info("queue_orphan_deleted")
          .Kv("queue_id", name)
          .Kv("reason", "data file without a record (not committed)");
    }
  }

  observe::Info("queue_recovered")
      .Kv("queue_dir", layout.root())
      .Kv("incoming", report.recovered[sluice::v1::INCOMING])
      .Kv("active", report.recovered[sluice::v1::ACTIVE])
      .Kv("deferred", report.recovered[sluice::v1::DEFERRED])
      .Kv("hold", report.recovered[sluice::v1::HOLD])
      .Kv("corrupt", report.recovered[sluice::v1::CORRUPT])
      .Kv("moved_to_corrupt", report.moved_to_corrupt)
      .Kv("tmp_deleted", report.tmp_deleted)
      .Kv("orphans_deleted", report.orphan_data_deleted);
  return report;
}

}  // namespace sluice::reinject
