// services/reinject/handoff/handoff_sender.cc -- see handoff_sender.h.
#include "services/reinject/handoff/handoff_sender.h"

#include <zlib.h>

#include <chrono>
#include <map>
#include <mutex>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/client_context.h"
#include "lib/control/admin_channel.h"
#include "lib/observe/log.h"
#include "services/reinject/queue/proto_time.h"
#include "sluice/v1/queue.grpc.pb.h"

namespace sluice::reinject {
namespace {

constexpr size_t kChunkBytes = 64 * 1024;

// Where each entry of one stream stands.
enum class Stage { kTaken, kMarked, kSent, kDone };

}  // namespace

void HandoffResult::Add(const HandoffResult& o) {
  stored += o.stored;
  already_had += o.already_had;
  refused += o.refused;
  unanswered += o.unanswered;
  not_sent += o.not_sent;
  bytes += o.bytes;
  moved.insert(moved.end(), o.moved.begin(), o.moved.end());
  failed.insert(failed.end(), o.failed.begin(), o.failed.end());
  if (error.ok()) error = o.error;
}

HandoffSender::HandoffSender(HandoffSenderOptions options) : options_(std::move(options)) {
  if (options_.batch_entries == 0) options_.batch_entries = 1;
}

HandoffResult HandoffSender::Send(const PeerEndpoint& peer, const std::vector<std::string>& ids, absl::Time deadline,
                                  bool retry) {
  QueueStore& store = *options_.store;
  HandoffResult result;
  std::mutex mu;  // guards stage, sizes and result against the reader thread
  absl::flat_hash_map<std::string, Stage> stage;
  absl::flat_hash_map<std::string, uint64_t> sizes;
  for (const auto& id : ids) stage[id] = Stage::kTaken;

  control::AdminClientOptions client;
  client.credentials = options_.credentials;
  client.tls_server_name = peer.tls_name;
  auto channel = control::MakeAdminChannel(peer.grpc_target, client);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(deadline));
  if (!options_.token.empty()) context.AddMetadata("authorization", "Bearer " + options_.token);
  auto stub = sluice::v1::Queue::NewStub(channel);
  auto stream = stub->Transfer(&context);

  // The peer says it is ready before anything is marked for it.
  sluice::v1::QueueTransferReply hello;
  bool ready = stream->Read(&hello) && hello.ready();

  auto end_one = [&](const std::string& id, QueueStore::HandoffEnd end) {
    store.EndHandoff(id, end, peer.label);
  };
  std::thread reader;
  if (ready) {
    reader = std::thread([&] {
      sluice::v1::QueueTransferReply reply;
      while (stream->Read(&reply)) {
        const std::string& id = reply.queue_id();
        uint64_t size = 0;
        {
          std::lock_guard<std::mutex> lock(mu);
          auto it = stage.find(id);
          if (it == stage.end() || it->second != Stage::kSent) continue;  // not ours to end
          it->second = Stage::kDone;
          size = sizes[id];
        }
        using Outcome = sluice::v1::QueueTransferReply;
        const bool taken = reply.outcome() == Outcome::STORED || reply.outcome() == Outcome::ALREADY_HAD;
        end_one(id, taken ? QueueStore::HandoffEnd::kSent : QueueStore::HandoffEnd::kNotSent);
        observe::Info("handoff_sent")
            .Kv("queue_id", id)
            .Kv("peer", peer.label)
            .Kv("outcome", sluice::v1::QueueTransferReply::Outcome_Name(reply.outcome()))
            .Kv("error", reply.error());
        std::lock_guard<std::mutex> lock(mu);
        HandoffOutcome o = reply.outcome() == Outcome::STORED        ? HandoffOutcome::kStored
                           : reply.outcome() == Outcome::ALREADY_HAD ? HandoffOutcome::kAlreadyHad
                                                                     : HandoffOutcome::kRefused;
        if (options_.metrics != nullptr) options_.metrics->sent[static_cast<int>(o)]->Increment();
        if (taken) {
          ++(reply.outcome() == Outcome::STORED ? result.stored : result.already_had);
          result.bytes += size;
          if (options_.metrics != nullptr) options_.metrics->bytes_sent->Increment(static_cast<double>(size));
          result.moved.push_back(id);
        } else {
          ++result.refused;
          result.failed.push_back(id);
        }
      }
    });
  } else {
    observe::Warn("handoff_peer_not_ready").Kv("peer", peer.label).Kv("entries", static_cast<uint64_t>(ids.size()));
  }

  bool broken = !ready;
  sluice::v1::QueueHandoffMark mark;
  mark.set_peer(peer.label);
  mark.set_tls_name(peer.tls_name);
  for (size_t begin = 0; begin < ids.size() && !broken; begin += options_.batch_entries) {
    if (absl::Now() >= deadline) break;
    std::vector<std::string> batch(ids.begin() + static_cast<std::ptrdiff_t>(begin),
                                   ids.begin() + static_cast<std::ptrdiff_t>(std::min(ids.size(), begin + options_.batch_entries)));
    // 1. The marks, durable before the peer can have any of them.
    *mark.mutable_marked_at() = ToProtoTime(absl::Now());
    absl::Status marked = store.MarkHandoff(batch, mark);
    if (!marked.ok()) {
      observe::Error("handoff_mark_failed").Kv("peer", peer.label).Kv("error", MessageOf(marked));
      if (result.error.ok()) result.error = marked;
      break;
    }
    {
      std::lock_guard<std::mutex> lock(mu);
      for (const auto& id : batch) stage[id] = Stage::kMarked;
    }
    // 2. The entries, whole.
    for (const std::string& id : batch) {
      auto entry = store.ReadForHandoff(id);
      if (!entry.ok()) {
        observe::Warn("handoff_unreadable").Kv("queue_id", id).Kv("error", MessageOf(entry.status()));
        continue;  // stays kMarked: its mark is cleared below
      }
      auto& [record, content] = *entry;
      sluice::v1::QueueTransferRequest head;
      auto* e = head.mutable_entry();
      *e->mutable_record() = record;
      e->set_content_bytes(content.size());
      e->set_retry(retry);
      e->set_source(options_.instance);
      {
        std::lock_guard<std::mutex> lock(mu);
        stage[id] = Stage::kSent;  // from the first byte on, the peer may end up with it
        sizes[id] = content.size();
      }
      bool ok = stream->Write(head);
      uLong crc = crc32(0L, Z_NULL, 0);
      std::string chunk(kChunkBytes, '\0');
      for (uint64_t pos = 0; ok && pos < content.size();) {
        auto n = content.Read(pos, chunk.data(), chunk.size());
        if (!n.ok() || *n == 0) {
          ok = false;  // the content could not be read: end the stream, the peer drops the entry
          break;
        }
        crc = crc32(crc, reinterpret_cast<const Bytef*>(chunk.data()), static_cast<uInt>(*n));
        sluice::v1::QueueTransferRequest piece;
        piece.set_content(chunk.data(), *n);
        ok = stream->Write(piece);
        pos += *n;
      }
      if (ok) {
        sluice::v1::QueueTransferRequest end;
        end.mutable_end()->set_content_crc32(static_cast<uint32_t>(crc));
        ok = stream->Write(end);
      }
      if (!ok) {
        broken = true;
        break;
      }
    }
  }
  stream->WritesDone();
  if (reader.joinable()) reader.join();
  grpc::Status status = stream->Finish();
  if (!status.ok() && result.error.ok()) {
    result.error = absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                                absl::StrCat(peer.label, ": ", status.error_message()));
  }
  // Everything not answered goes back: never sent (unmarked or marked: the peer has none of
  // it), or sent without an answer (stays marked: the peer may have it).
  std::vector<std::pair<std::string, Stage>> left;
  {
    std::lock_guard<std::mutex> lock(mu);
    for (const auto& id : ids) {
      if (stage[id] != Stage::kDone) left.emplace_back(id, stage[id]);
    }
  }
  for (const auto& [id, s] : left) {
    if (s == Stage::kSent) {
      end_one(id, QueueStore::HandoffEnd::kUnknown);
      ++result.unanswered;
      if (options_.metrics != nullptr) options_.metrics->sent[static_cast<int>(HandoffOutcome::kUnanswered)]->Increment();
    } else {
      end_one(id, QueueStore::HandoffEnd::kNotSent);
      ++result.not_sent;
    }
    result.failed.push_back(id);
  }
  observe::Info("handoff_stream_done")
      .Kv("peer", peer.label)
      .Kv("entries", static_cast<uint64_t>(ids.size()))
      .Kv("stored", result.stored)
      .Kv("already_had", result.already_had)
      .Kv("refused", result.refused)
      .Kv("unanswered", result.unanswered)
      .Kv("not_sent", result.not_sent)
      .Kv("bytes", result.bytes)
      .Kv("error", MessageOf(result.error));
  return result;
}

HandoffResult HandoffSender::ResolveMarked(absl::Time deadline) {
  HandoffResult total;
  // Grouped by peer: one stream each.
  std::map<std::string, std::pair<PeerEndpoint, std::vector<std::string>>> by_peer;
  for (auto& [id, mark] : options_.store->TakeMarked()) {
    PeerEndpoint p;
    p.label = mark.peer();
    p.grpc_target = absl::StrCat(p.label[0] == '[' ? "ipv6:" : "ipv4:", p.label);
    p.tls_name = mark.tls_name();
    auto& slot = by_peer[p.label];
    slot.first = p;
    slot.second.push_back(id);
  }
  for (auto& [label, work] : by_peer) {
    observe::Info("handoff_resolve").Kv("peer", label).Kv("entries", static_cast<uint64_t>(work.second.size()));
    total.Add(Send(work.first, work.second, deadline, /*retry=*/true));
  }
  return total;
}

HandoffResult HandoffSender::HandOffAll(const std::vector<PeerEndpoint>& peers, absl::Time deadline) {
  auto started = std::chrono::steady_clock::now();
  HandoffResult total = ResolveMarked(deadline);
  std::vector<PeerEndpoint> healthy = peers;
  while (!healthy.empty() && absl::Now() < deadline) {
    std::vector<std::string> ids = options_.store->TakeForHandoff({}, nullptr);
    if (ids.empty()) break;
    // Split between the peers, each on its own thread.
    const size_t n = std::min(healthy.size(), ids.size());
    std::vector<HandoffResult> results(n);
    std::vector<std::thread> threads;
    for (size_t p = 0; p < n; ++p) {
      std::vector<std::string> part;
      for (size_t i = p; i < ids.size(); i += n) part.push_back(ids[i]);
      threads.emplace_back([this, &results, &healthy, p, part = std::move(part), deadline] {
        results[p] = Send(healthy[p], part, deadline, /*retry=*/false);
      });
    }
    for (auto& t : threads) t.join();
    std::vector<PeerEndpoint> still;
    bool progress = false;
    for (size_t p = 0; p < n; ++p) {
      total.Add(results[p]);
      progress = progress || !results[p].moved.empty();
      if (results[p].error.ok() || !results[p].moved.empty()) still.push_back(healthy[p]);
    }
    for (size_t p = n; p < healthy.size(); ++p) still.push_back(healthy[p]);
    if (!progress && still.size() == healthy.size()) break;  // nobody takes anything: stop
    healthy = std::move(still);
  }
  if (options_.metrics != nullptr) {
    options_.metrics->duration->Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  }
  return total;
}

}  // namespace sluice::reinject
