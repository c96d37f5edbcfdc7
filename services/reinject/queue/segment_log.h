// services/reinject/queue/segment_log.h
//
// The queue's append-only log: numbered segment files under QUEUE_DIR/segments/
// (0000000000000001, 0000000000000002, ...), each a sequence of frames (queue_frame.h).
// Only the group committer appends, always to the newest ("active") segment, which is
// replaced by a new one past `segment_bytes`; Sync() makes everything appended so far
// durable with one fdatasync per segment written since the last sync (normally one) and,
// for a new segment, one fsync of segments/ for its name.
//
// Every entry of the queue holds references on the segments its record frame and its
// content are in; a segment nobody refers to any more is removed once it is the oldest
// (never out of order: a remove frame in a newer segment must outlive the frames it
// cancels in older ones), and only after a sync, so that the remove frames that let go
// of it are on disk first. Compaction (QueueStore::Compact) moves the few live entries out
// of an old segment so it can go.
//
// Thread-safe. Reads (records, content) may run on any thread while the committer appends.
// Never: appends anywhere but at the end of the active segment; removes a segment that is
// referenced, not the oldest, or the active one; syncs a segment twice for the same bytes.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "services/reinject/queue/message_content.h"
#include "services/reinject/queue/queue_frame.h"
#include "services/reinject/queue/queue_layout.h"

namespace sluice::reinject {

class SegmentLog {
 public:
  struct Options {
    uint64_t segment_bytes = 64 << 20;
  };
  SegmentLog(const QueueLayout& layout, QueueMetrics* metrics, Options options);
  ~SegmentLog();
  SegmentLog(const SegmentLog&) = delete;
  SegmentLog& operator=(const SegmentLog&) = delete;

  // Opens the segments found on disk (for recovery to read) and starts a new active one.
  absl::Status Open();
  // Segment numbers on disk, oldest first.
  std::vector<uint64_t> Segments() const;
  // The whole segment, mapped read-only (recovery); empty for an empty segment.
  class Mapping {
   public:
    Mapping() = default;
    Mapping(const void* p, size_t n) : p_(p), n_(n) {}
    ~Mapping();
    Mapping(Mapping&& o) noexcept : p_(o.p_), n_(o.n_) { o.p_ = nullptr; o.n_ = 0; }
    Mapping& operator=(Mapping&&) = delete;
    std::string_view bytes() const { return std::string_view(static_cast<const char*>(p_), n_); }

   private:
    const void* p_ = nullptr;
    size_t n_ = 0;
  };
  absl::StatusOr<Mapping> Map(uint64_t segment) const;

  // Appends `frames` (one write) at the end of the active segment, first starting a new
  // segment when the active one is full. Each frame with hold_ref[i] gets one reference on
  // its segment for the caller. On error nothing is referenced and the active segment is
  // abandoned (the next append starts a new one).
  absl::StatusOr<std::vector<FrameLocation>> Append(const std::vector<std::string_view>& frames,
                                                    const std::vector<bool>& hold_ref);
  // Makes every append so far durable. Returns the number of fsyncs it took (0: nothing new).
  absl::StatusOr<int> Sync();
  bool dirty() const;

  void Ref(uint64_t segment, int64_t delta);
  // Removes the oldest segments while they are unreferenced and not active (a Sync first when
  // something is not yet durable). Returns how many were removed.
  size_t RemoveDead();
  // Starts a new active segment when the active one is unreferenced and at least
  // `min_bytes` long (so an idle queue's dead bytes can go).
  void RotateIfDead(uint64_t min_bytes);

  // Reads `size` bytes at `offset` of a segment (a record frame).
  absl::StatusOr<std::string> Read(uint64_t segment, uint64_t offset, uint64_t size) const;
  // The open file of a segment, for MessageContent; NOT_FOUND when removed.
  absl::StatusOr<std::shared_ptr<SharedFd>> File(uint64_t segment) const;
  // References held on a segment (tests, compaction).
  int64_t refs(uint64_t segment) const;
  uint64_t oldest() const;
  uint64_t active() const;
  size_t count() const;
  // fsync/fdatasync calls so far (tests: one per batch).
  uint64_t syncs() const;

 private:
  struct Segment {
    std::shared_ptr<SharedFd> file;
    uint64_t size = 0;
    uint64_t synced = 0;
    bool name_durable = true;
    int64_t refs = 0;
  };
  static std::string NameOf(uint64_t number);
  absl::Status StartSegment();  // with mu_ held
  absl::Status SyncFd(int fd);  // timed

  const QueueLayout& layout_;
  QueueMetrics* metrics_;
  Options options_;
  mutable std::mutex mu_;
  std::map<uint64_t, Segment> segments_;
  uint64_t active_ = 0;  // 0: none (start one at the next append)
  std::mutex sync_mu_;   // one Sync at a time
  uint64_t syncs_ = 0;
};

}  // namespace sluice::reinject
