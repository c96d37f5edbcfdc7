// services/reinject/queue/queue_store_admin.cc -- the operator calls of QueueStore
// (postqueue/postsuper for the cluster): Get, List, Hold, Release, Delete, Flush.
// See queue_store.h.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "lib/observe/log.h"
#include "services/reinject/queue/proto_time.h"
#include "services/reinject/queue/queue_frame.h"
#include "services/reinject/queue/queue_store.h"

namespace sluice::reinject {
namespace {

constexpr size_t kMaxHeaderBytes = 1 << 20;

// The header block of a message: everything up to and including the empty line.
std::string HeaderBlock(std::string_view message) {
  size_t crlf = message.find("\r\n\r\n");
  size_t lf = message.find("\n\n");
  if (crlf != std::string_view::npos && (lf == std::string_view::npos || crlf < lf)) {
    return std::string(message.substr(0, crlf + 2));
  }
  if (lf != std::string_view::npos) return std::string(message.substr(0, lf + 1));
  return std::string(message);
}

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

}  // namespace

absl::StatusOr<sluice::v1::QueueRecord> QueueStore::ReadForAdmin(const std::string& id) const {
  for (int attempt = 0; attempt < 4; ++attempt) {
    IndexEntry e;
    {
      std::lock_guard<std::mutex> lock(mu_);
      const IndexEntry* p = index_.Find(id);
      if (p == nullptr) return absl::NotFoundError("queue id " + id + " not found");
      e = *p;
    }
    absl::StatusOr<sluice::v1::QueueRecord> record;
    if (e.state == sluice::v1::CORRUPT) {
      // What recovery saved: a record frame (its last_error says why), or raw bytes.
      auto bytes = layout_->ReadFile(QueueDir::kCorrupt, e.file.empty() ? id : e.file, 16 << 20);
      if (!bytes.ok()) {
        record = bytes.status();
      } else {
        auto frame = ParseFrame(*bytes);
        auto payload = frame.ok() ? DecodeRecordPayload(frame->payload) : absl::StatusOr<RecordPayload>(frame.status());
        if (payload.ok()) {
          record = std::move(*payload->log.mutable_record());
          record->set_queue_id(id);
        } else {
          record = absl::DataLossError(absl::StrCat("not a queue record (", bytes->size(), " bytes kept in corrupt/",
                                                    e.file, "): ", payload.status().message()));
        }
      }
    } else {
      record = ReadRecord(e);
      // Rewritten meanwhile (the old frame's segment may be gone): read again.
      if (!record.ok() && attempt < 3) continue;
    }
    if (!record.ok()) {
      sluice::v1::QueueRecord stand_in;
      stand_in.set_queue_id(id);
      stand_in.set_size_bytes(e.size_bytes);
      if (e.arrived_at != absl::InfinitePast()) *stand_in.mutable_arrived_at() = ToProtoTime(e.arrived_at);
      stand_in.set_last_error(std::string(MessageOf(record.status())));
      record = std::move(stand_in);
    }
    record->set_state(e.state);
    return record;
  }
  return absl::UnavailableError("queue id " + id + " is being moved; try again");
}

absl::StatusOr<sluice::v1::QueueEntry> QueueStore::Get(const std::string& id) const {
  auto record = ReadForAdmin(id);
  if (!record.ok()) return record.status();
  sluice::v1::QueueEntry entry;
  auto content = Content(id);
  if (content.ok()) {
    std::string head(std::min<uint64_t>(content->size(), kMaxHeaderBytes), '\0');
    size_t got = 0;
    while (got < head.size()) {
      auto n = content->Read(got, head.data() + got, head.size() - got);
      if (!n.ok() || *n == 0) break;
      got += *n;
    }
    head.resize(got);
    entry.set_headers(HeaderBlock(head));
  }
  *entry.mutable_record() = std::move(*record);
  return entry;
}

QueueListResult QueueStore::List(const QueueListFilter& filter) const {
  std::vector<std::pair<std::string, IndexEntry>> entries;
  {
    std::lock_guard<std::mutex> lock(mu_);
    entries = index_.Snapshot();
  }
  absl::Time now = clock_->Now();
  bool needs_record = !filter.sender.empty() || !filter.recipient.empty();
  QueueListResult result;
  for (const auto& [id, e] : entries) {
    if (filter.state != sluice::v1::QUEUE_STATE_UNSPECIFIED && e.state != filter.state) continue;
    if (filter.min_age > absl::ZeroDuration() && e.arrived_at != absl::InfinitePast() &&
        now - e.arrived_at < filter.min_age) {
      continue;
    }
    bool want_record = needs_record || result.records.size() < filter.limit;
    if (!want_record) {
      ++result.total_messages;
      result.total_bytes += e.size_bytes;
      continue;
    }
    auto record = ReadForAdmin(id);
    if (!record.ok()) continue;  // removed meanwhile
    if (!filter.sender.empty() && !Contains(record->sender(), filter.sender)) continue;
    if (!filter.recipient.empty()) {
      bool any = false;
      for (const auto& r : record->recipients()) any = any || Contains(r.address(), filter.recipient);
      if (!any) continue;
    }
    ++result.total_messages;
    result.total_bytes += e.size_bytes;
    if (result.records.size() < filter.limit) result.records.push_back(std::move(*record));
  }
  return result;
}

std::vector<std::string> QueueStore::Ids(sluice::v1::QueueState state) const {
  std::vector<std::string> ids;
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [id, e] : index_.Snapshot()) {
    if (state == sluice::v1::QUEUE_STATE_UNSPECIFIED || e.state == state) ids.push_back(id);
  }
  return ids;
}

absl::Status QueueStore::Hold(const std::string& id, const std::string& reason) {
  sluice::v1::QueueState from;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const IndexEntry* p = index_.Find(id);
    if (p == nullptr) return absl::NotFoundError("queue id " + id + " not found");
    if (p->state == sluice::v1::HOLD && !p->busy) return absl::OkStatus();
    if (p->state == sluice::v1::CORRUPT) return absl::FailedPreconditionError("queue id " + id + " is corrupt");
    if (p->busy) {
      // Being delivered or moved: the holder puts it on hold when it finishes.
      index_.Update(id, [&](IndexEntry& x) {
        x.pending_hold = true;
        x.hold_reason = reason;
      });
      return absl::OkStatus();
    }
    from = p->state;
    index_.Update(id, [](IndexEntry& x) { x.busy = true; });
  }
  (void)from;
  absl::Status s = RewriteRecord(id, sluice::v1::HOLD, [&](sluice::v1::QueueRecord& r) { r.set_hold_reason(reason); });
  if (absl::IsDataLoss(s)) {
    MarkCorrupt(id, s);
    return s;
  }
  Settle(id, [&](IndexEntry& x) {
    if (!s.ok()) return;
    x.state = sluice::v1::HOLD;
    x.hold_reason = reason;
  });
  observe::Info("queue_hold").Kv("queue_id", id).Kv("reason", reason).Kv("error", MessageOf(s));
  return s;
}

absl::Status QueueStore::Release(const std::string& id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    const IndexEntry* p = index_.Find(id);
    if (p == nullptr) return absl::NotFoundError("queue id " + id + " not found");
    if (p->busy) {
      if (!p->pending_hold) return absl::FailedPreconditionError("queue id " + id + " is not on hold");
      index_.Update(id, [](IndexEntry& x) { x.pending_hold = false; });
      return absl::OkStatus();
    }
    if (p->state != sluice::v1::HOLD) return absl::FailedPreconditionError("queue id " + id + " is not on hold");
    index_.Update(id, [](IndexEntry& x) { x.busy = true; });
  }
  absl::Status s = RewriteRecord(id, sluice::v1::ACTIVE, [](sluice::v1::QueueRecord& r) {
    r.clear_hold_reason();
    r.clear_next_attempt_at();
  });
  if (absl::IsDataLoss(s)) {
    MarkCorrupt(id, s);
    return s;
  }
  Settle(id, [&](IndexEntry& x) {
    if (!s.ok()) return;
    x.state = sluice::v1::ACTIVE;
    x.hold_reason.clear();
    x.due_at = absl::InfinitePast();
  });
  observe::Info("queue_release").Kv("queue_id", id).Kv("error", MessageOf(s));
  return s;
}

absl::Status QueueStore::Delete(const std::string& id) {
  IndexEntry e;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const IndexEntry* p = index_.Find(id);
    if (p == nullptr) return absl::NotFoundError("queue id " + id + " not found");
    if (p->busy) {
      index_.Update(id, [](IndexEntry& x) { x.pending_delete = true; });
      return absl::OkStatus();
    }
    index_.Update(id, [](IndexEntry& x) { x.busy = true; });
    e = *index_.Find(id);
  }
  RemoveEntry(id, e, "deleted by operator", /*wait=*/true);
  return absl::OkStatus();
}

absl::Status QueueStore::Flush(const std::string& id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    const IndexEntry* p = index_.Find(id);
    if (p == nullptr) return absl::NotFoundError("queue id " + id + " not found");
    if (p->state == sluice::v1::HOLD || p->state == sluice::v1::CORRUPT) {
      return absl::FailedPreconditionError(absl::StrCat("queue id ", id, " is ", QueueStateName(p->state)));
    }
    if (!p->busy) index_.Update(id, [](IndexEntry& x) { x.due_at = absl::InfinitePast(); });
  }
  Wake();
  return absl::OkStatus();
}

}  // namespace sluice::reinject
