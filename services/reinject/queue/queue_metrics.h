// services/reinject/queue/queue_metrics.h
//
// Every metric of the reinject queue and its delivery, declared in one place (Envoy style):
//
//   sluice_reinject_messages_total{outcome}       received (Begin), queued (Commit done),
//                                                 delivered / deferred / bounced (per attempt
//                                                 that delivered, deferred or bounced at
//                                                 least one recipient)
//   sluice_reinject_recipients_total{outcome}     delivered, deferred, bounced (per recipient)
//   sluice_reinject_admission_refused_total{reason}  queue_max_bytes, disk_free (452 4.3.1)
//   sluice_reinject_queue_messages{state}         incoming, active, deferred, hold, corrupt
//   sluice_reinject_queue_bytes{state}            data bytes per state
//   sluice_reinject_queue_oldest_age_seconds      age of the oldest queued message
//   sluice_reinject_disk_free_bytes               free space on the queue's file system
//   sluice_reinject_disk_min_free_bytes           the free space below which new mail is
//                                                 refused (queue_min_free_bytes in force), so
//                                                 alerts derive from the configured threshold
//   sluice_reinject_delivery_duration_seconds     one delivery attempt (one agent call)
//   sluice_reinject_fsync_duration_seconds        one fsync/fdatasync of a segment, a large
//                                                 message file or a queue directory
//   sluice_reinject_commit_batch_size             queue writes (commits, record updates,
//                                                 removals) sharing one group-commit batch
//   sluice_reinject_commit_batch_fsyncs           fsyncs one batch took (normally 1; 0 for a
//                                                 batch of removals only)
//
// Every label value is created here, so dashboards see zeros, never gaps.
// Never: labels with an address, a sender, a queue id or any other open set.
#pragma once

#include <array>

#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "sluice/v1/queue.pb.h"

namespace sluice::reinject {

struct QueueMetrics {
  explicit QueueMetrics(prometheus::Registry& registry);

  prometheus::Counter* received;
  prometheus::Counter* queued;
  prometheus::Counter* delivered;
  prometheus::Counter* deferred;
  prometheus::Counter* bounced;

  prometheus::Counter* recipients_delivered;
  prometheus::Counter* recipients_deferred;
  prometheus::Counter* recipients_bounced;

  prometheus::Counter* refused_queue_max_bytes;
  prometheus::Counter* refused_disk_free;

  // Indexed by sluice.v1.QueueState (INCOMING..CORRUPT); [0] is unused (null).
  std::array<prometheus::Gauge*, 6> queue_messages{};
  std::array<prometheus::Gauge*, 6> queue_bytes{};
  prometheus::Gauge* oldest_age_seconds;
  prometheus::Gauge* disk_free_bytes;
  prometheus::Gauge* disk_min_free_bytes;

  prometheus::Histogram* delivery_duration;
  prometheus::Histogram* fsync_duration;
  prometheus::Histogram* commit_batch_size;
  prometheus::Histogram* commit_batch_fsyncs;
};

}  // namespace sluice::reinject
