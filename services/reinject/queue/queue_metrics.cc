// services/reinject/queue/queue_metrics.cc -- see queue_metrics.h.
#include "services/reinject/queue/queue_metrics.h"

#include "services/reinject/queue/queue_layout.h"

namespace sluice::reinject {

QueueMetrics::QueueMetrics(prometheus::Registry& registry) {
  auto& messages = prometheus::BuildCounter()
                       .Name("sluice_reinject_messages_total")
                       .Help("Messages by outcome: received, queued, delivered, deferred, bounced.")
                       .Register(registry);
  received = &messages.Add({{"outcome", "received"}});
  queued = &messages.Add({{"outcome", "queued"}});
  delivered = &messages.Add({{"outcome", "delivered"}});
  deferred = &messages.Add({{"outcome", "deferred"}});
  bounced = &messages.Add({{"outcome", "bounced"}});

  auto& recipients = prometheus::BuildCounter()
                         .Name("sluice_reinject_recipients_total")
                         .Help("Recipient delivery attempts by outcome.")
                         .Register(registry);
  recipients_delivered = &recipients.Add({{"outcome", "delivered"}});
  recipients_deferred = &recipients.Add({{"outcome", "deferred"}});
  recipients_bounced = &recipients.Add({{"outcome", "bounced"}});

  auto& refused = prometheus::BuildCounter()
                      .Name("sluice_reinject_admission_refused_total")
                      .Help("New mail refused with 452 4.3.1 because the queue is full, by reason.")
                      .Register(registry);
  refused_queue_max_bytes = &refused.Add({{"reason", "queue_max_bytes"}});
  refused_disk_free = &refused.Add({{"reason", "disk_free"}});

  auto& count = prometheus::BuildGauge()
                    .Name("sluice_reinject_queue_messages")
                    .Help("Messages in the queue by state.")
                    .Register(registry);
  auto& bytes = prometheus::BuildGauge()
                    .Name("sluice_reinject_queue_bytes")
                    .Help("Message bytes in the queue by state.")
                    .Register(registry);
  for (int s = sluice::v1::INCOMING; s <= sluice::v1::CORRUPT; ++s) {
    const char* name = QueueStateName(static_cast<sluice::v1::QueueState>(s));
    queue_messages[static_cast<size_t>(s)] = &count.Add({{"state", name}});
    queue_bytes[static_cast<size_t>(s)] = &bytes.Add({{"state", name}});
  }
  oldest_age_seconds = &prometheus::BuildGauge()
                            .Name("sluice_reinject_queue_oldest_age_seconds")
                            .Help("Age of the oldest message in the queue (0 when empty).")
                            .Register(registry)
                            .Add({});
  disk_free_bytes = &prometheus::BuildGauge()
                         .Name("sluice_reinject_disk_free_bytes")
                         .Help("Free bytes on the queue's file system.")
                         .Register(registry)
                         .Add({});
  disk_min_free_bytes = &prometheus::BuildGauge()
                             .Name("sluice_reinject_disk_min_free_bytes")
                             .Help("Free bytes below which new mail is refused (queue_min_free_bytes in force).")
                             .Register(registry)
                             .Add({});

  delivery_duration = &prometheus::BuildHistogram()
                           .Name("sluice_reinject_delivery_duration_seconds")
                           .Help("Duration of one delivery attempt.")
                           .Register(registry)
                           .Add({}, prometheus::Histogram::BucketBoundaries{
                                        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 600});
  fsync_duration = &prometheus::BuildHistogram()
                        .Name("sluice_reinject_fsync_duration_seconds")
                        .Help("Duration of one fsync of a queue segment, large message file or directory.")
                        .Register(registry)
                        .Add({}, prometheus::Histogram::BucketBoundaries{
                                     0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1});
  commit_batch_size = &prometheus::BuildHistogram()
                           .Name("sluice_reinject_commit_batch_size")
                           .Help("Queue writes sharing one group-commit batch (one append, at most one sync).")
                           .Register(registry)
                           .Add({}, prometheus::Histogram::BucketBoundaries{1, 2, 4, 8, 16, 32, 64, 128, 256});
  commit_batch_fsyncs = &prometheus::BuildHistogram()
                             .Name("sluice_reinject_commit_batch_fsyncs")
                             .Help("fsyncs one group-commit batch took (1 normally; 0 for removals only).")
                             .Register(registry)
                             .Add({}, prometheus::Histogram::BucketBoundaries{0, 1, 2, 3, 4, 8, 16});
}

}  // namespace sluice::reinject
