// services/reinject/queue/queue_recovery.cc -- see queue_recovery.h.
#include "services/reinject/queue/queue_recovery.h"

#include <map>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "lib/observe/log.h"
#include "services/reinject/queue/proto_time.h"
#include "services/reinject/queue/queue_frame.h"
#include "services/reinject/queue/queue_id.h"

namespace sluice::reinject {
namespace {

struct Latest {
  FrameLocation at;
  bool removed = false;
  std::string handoff_peer;  // a hand-off mark after the record: on its way to this peer
  FrameLocation mark_at;
};

// The inline content of every sound record frame: (segment, offset) -> length.
using InlineRegions = std::map<std::pair<uint64_t, uint64_t>, uint64_t>;

uint32_t Le32(std::string_view b) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(static_cast<unsigned char>(b[i])) << (8 * i);
  return v;
}

// Puts a damaged byte range of a segment into corrupt/ (once: the name says where it was).
void SaveDamaged(const QueueLayout& layout, uint64_t segment, uint64_t offset, std::string_view bytes,
                 std::string_view reason, RecoveryReport& report) {
  std::string name = absl::StrCat(segment, ".", offset);
  if (layout.Exists(QueueDir::kCorrupt, name)) return;  // saved at an earlier start
  absl::Status s = layout.WriteNewFile(QueueDir::kCorrupt, name, bytes);
  ++report.moved_to_corrupt;
  ++report.damaged_ranges;
  observe::Warn("queue_corrupt")
      .Kv("segment", segment)
      .Kv("offset", offset)
      .Kv("bytes", static_cast<uint64_t>(bytes.size()))
      .Kv("moved_to", absl::StrCat("corrupt/", name))
      .Kv("reason", reason)
      .Kv("move_error", MessageOf(s));
}

// Why a live record cannot be queued, or OK; fills `entry` when OK.
absl::Status CheckEntry(const QueueLayout& layout, const std::string& id, const FrameLocation& at,
                        const RecordPayload& p, const InlineRegions& regions, IndexEntry& entry) {
  const sluice::v1::QueueRecord& r = p.log.record();
  if (!QueueIdGenerator::IsValid(id)) return absl::DataLossError("not a queue id");
  if (r.queue_id() != id) return absl::DataLossError(absl::StrCat("record names queue id ", r.queue_id()));
  if (r.recipients_size() == 0) return absl::DataLossError("record has no recipient");
  sluice::v1::QueueContentRef content;
  if (!p.log.has_content()) {
    content.set_segment(at.segment);
    content.set_offset(at.offset + at.size - p.content.size());
    content.set_length(p.content.size());
  } else if (p.log.content().spilled()) {
    content = p.log.content();
    auto size = layout.FileSize(QueueDir::kLarge, id);
    if (!size.ok()) return absl::DataLossError(absl::StrCat("content: ", size.status().message()));
    if (*size != content.length()) {
      return absl::DataLossError(absl::StrCat("large/", id, " has ", *size, " bytes, record says ", content.length()));
    }
  } else {
    content = p.log.content();
    auto it = regions.find({content.segment(), content.offset()});
    if (it == regions.end() || it->second != content.length()) {
      return absl::DataLossError(absl::StrCat("content in segment ", content.segment(), " at ", content.offset(),
                                              " is missing"));
    }
  }
  if (content.length() != r.size_bytes()) {
    return absl::DataLossError(absl::StrCat("content has ", content.length(), " bytes, record says ", r.size_bytes()));
  }
  entry.state = r.state();
  if (entry.state != sluice::v1::ACTIVE && entry.state != sluice::v1::DEFERRED && entry.state != sluice::v1::HOLD) {
    entry.state = sluice::v1::INCOMING;
  }
  entry.size_bytes = r.size_bytes();
  entry.arrived_at = FromProtoTime(r.arrived_at());
  if (entry.state == sluice::v1::DEFERRED && r.has_next_attempt_at()) entry.due_at = FromProtoTime(r.next_attempt_at());
  if (entry.state == sluice::v1::HOLD) entry.hold_reason = r.hold_reason();
  entry.record_at = at;
  entry.content = content;
  return absl::OkStatus();
}

}  // namespace

std::string CorruptNameFor(const QueueLayout& layout, const std::string& id) {
  std::string name = id;
  for (int n = 1; layout.Exists(QueueDir::kCorrupt, name); ++n) name = absl::StrCat(id, ".", n);
  return name;
}

absl::StatusOr<RecoveryReport> RecoverQueue(const QueueLayout& layout, SegmentLog& log, GroupCommitter& committer,
                                            QueueIndex& index) {
  RecoveryReport report;
  absl::flat_hash_map<std::string, Latest> latest;
  InlineRegions regions;

  for (uint64_t segment : log.Segments()) {
    auto mapping = log.Map(segment);
    if (!mapping.ok()) return mapping.status();
    ++report.segments;
    std::string_view bytes = mapping->bytes();
    size_t pos = 0;
    while (pos < bytes.size()) {
      auto frame = ParseFrame(bytes.substr(pos));
      if (!frame.ok()) {
        size_t next = FindNextFrame(bytes, pos + 1);
        size_t end = next == std::string_view::npos ? bytes.size() : next;
        SaveDamaged(layout, segment, pos, bytes.substr(pos, end - pos), MessageOf(frame.status()), report);
        pos = end;
        continue;
      }
      std::string id(frame->id);
      FrameLocation at{segment, pos, frame->size};
      if (frame->type == FrameType::kRemove) {
        latest[id] = Latest{at, true, "", {}};
      } else if (frame->type == FrameType::kHandoffMark) {
        auto it = latest.find(id);
        auto mark = DecodeHandoffMark(frame->payload);
        if (it != latest.end() && !it->second.removed && mark.ok()) {
          it->second.handoff_peer = mark->peer();
          it->second.mark_at = at;
        }
      } else {
        latest[id] = Latest{at, false, "", {}};
        if (frame->payload.size() >= 4) {
          uint64_t record_len = Le32(frame->payload);
          if (record_len <= frame->payload.size() - 4) {
            uint64_t content_len = frame->payload.size() - 4 - record_len;
            if (content_len > 0) regions[{segment, pos + frame->size - content_len}] = content_len;
          }
        }
      }
      pos += frame->size;
    }
  }

  absl::flat_hash_set<std::string> large_referenced;
  for (const auto& [id, l] : latest) {
    if (l.removed) continue;
    absl::Status problem;
    IndexEntry entry;
    sluice::v1::QueueLogRecord log_record;
    auto bytes = log.Read(l.at.segment, l.at.offset, l.at.size);
    if (!bytes.ok()) {
      problem = bytes.status();
    } else {
      auto frame = ParseFrame(*bytes);
      auto payload = frame.ok() ? DecodeRecordPayload(frame->payload) : absl::StatusOr<RecordPayload>(frame.status());
      if (!payload.ok()) {
        problem = payload.status();
      } else {
        log_record = payload->log;
        problem = CheckEntry(layout, id, l.at, *payload, regions, entry);
        entry.received = (frame->flags & kFrameFlagReceived) != 0;
        entry.handoff_peer = l.handoff_peer;
        entry.mark_at = l.mark_at;
      }
    }
    if (problem.ok()) {
      if (entry.content.spilled()) large_referenced.insert(id);
      log.Ref(entry.record_at.segment, +1);
      if (!entry.content.spilled()) log.Ref(entry.content.segment(), +1);
      ++report.recovered[static_cast<size_t>(entry.state)];
      if (!entry.handoff_peer.empty()) {
        log.Ref(entry.mark_at.segment, +1);  // the mark's segment stays until it is resolved
        ++report.handoff_marked;
      }
      index.Insert(id, std::move(entry));
      continue;
    }
    // Into corrupt/: the record as far as it reads, saying why; then out of the log.
    std::string name = CorruptNameFor(layout, id);
    log_record.mutable_record()->set_last_error(std::string(MessageOf(problem)));
    if (log_record.record().queue_id().empty()) log_record.mutable_record()->set_queue_id(id);
    absl::Status saved = layout.WriteNewFile(QueueDir::kCorrupt, name, EncodeRecordFrame(log_record, ""));
    if (saved.ok()) {
      CommitJob remove;
      remove.kind = CommitJob::Kind::kRemove;
      remove.id = id;
      remove.durable = true;
      saved = committer.SubmitAndWait(std::move(remove)).first;
    }
    ++report.moved_to_corrupt;
    observe::Warn("queue_corrupt")
        .Kv("queue_id", id)
        .Kv("moved_to", absl::StrCat("corrupt/", name))
        .Kv("reason", MessageOf(problem))
        .Kv("move_error", MessageOf(saved));
  }

  auto large = layout.List(QueueDir::kLarge);
  if (!large.ok()) return large.status();
  for (const std::string& name : *large) {
    if (large_referenced.contains(name)) continue;
    if (layout.Unlink(QueueDir::kLarge, name).ok()) {
      ++report.orphan_data_deleted;
      observe::Info("queue_orphan_deleted")
          .Kv("queue_id", name)
          .Kv("reason", "content without a record (not committed)");
    }
  }

  auto corrupt = layout.List(QueueDir::kCorrupt);
  if (!corrupt.ok()) return corrupt.status();
  for (const std::string& name : *corrupt) {
    if (index.Find(name) != nullptr) {
      observe::Warn("queue_corrupt_name_clash").Kv("file", absl::StrCat("corrupt/", name));
      continue;
    }
    IndexEntry e;
    e.state = sluice::v1::CORRUPT;
    e.file = name;
    auto size = layout.FileSize(QueueDir::kCorrupt, name);
    if (size.ok()) e.size_bytes = *size;
    index.Insert(name, std::move(e));
    ++report.recovered[sluice::v1::CORRUPT];
  }

  observe::Info("queue_recovered")
      .Kv("queue_dir", layout.root())
      .Kv("segments", report.segments)
      .Kv("incoming", report.recovered[sluice::v1::INCOMING])
      .Kv("active", report.recovered[sluice::v1::ACTIVE])
      .Kv("deferred", report.recovered[sluice::v1::DEFERRED])
      .Kv("hold", report.recovered[sluice::v1::HOLD])
      .Kv("corrupt", report.recovered[sluice::v1::CORRUPT])
      .Kv("moved_to_corrupt", report.moved_to_corrupt)
      .Kv("handoff_marked", report.handoff_marked)
      .Kv("orphans_deleted", report.orphan_data_deleted);
  return report;
}

}  // namespace sluice::reinject
