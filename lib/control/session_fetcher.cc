// lib/control/session_fetcher.cc -- see session_fetcher.h.
#include "lib/control/session_fetcher.h"

#include <future>
#include <utility>

#include "grpcpp/client_context.h"

namespace sluice::control {

using sluice::v1::SessionMetadata;

struct SessionFetcher::Call {
  grpc::ClientContext context;
  sluice::v1::GetSessionRequest request;
  SessionMetadata response;
  std::string key;
  Callback done;
};

namespace {

absl::Status ToAbsl(const grpc::Status& s) {
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
}

}  // namespace

SessionFetcher::SessionFetcher(SessionFetcherOptions options) : options_(std::move(options)) {}

SessionFetcher::~SessionFetcher() {
  std::unique_lock<std::mutex> lock(mu_);
  closing_ = true;
  for (Call* call : in_flight_) call->context.TryCancel();
  idle_.wait(lock, [this] { return in_flight_.empty(); });
}

sluice::v1::Admin::Stub* SessionFetcher::StubFor(const std::string& admin_address) {
  auto& stub = stubs_[admin_address];
  if (stub == nullptr) stub = sluice::v1::Admin::NewStub(MakeAdminChannel(admin_address, options_.client));
  return stub.get();
}

bool SessionFetcher::Lookup(const std::string& key, SessionMetadata* out) {
  auto it = cache_.find(key);
  if (it == cache_.end()) return false;
  if (it->second->expires <= absl::Now()) {
    lru_.erase(it->second);
    cache_.erase(it);
    return false;
  }
  lru_.splice(lru_.begin(), lru_, it->second);  // most recently used
  *out = it->second->meta;
  return true;
}

void SessionFetcher::Store(const std::string& key, const SessionMetadata& meta) {
  if (options_.cache_capacity == 0) return;
  auto it = cache_.find(key);
  if (it != cache_.end()) {
    lru_.erase(it->second);
    cache_.erase(it);
  }
  lru_.push_front(CacheEntry{key, meta, absl::Now() + options_.cache_ttl});
  cache_[key] = lru_.begin();
  while (lru_.size() > options_.cache_capacity) {
    cache_.erase(lru_.back().key);
    lru_.pop_back();
  }
}

void SessionFetcher::FetchAsync(const std::string& admin_address, const std::string& session_id,
                                absl::Duration timeout, Callback done) {
  if (session_id.empty()) {
    done(absl::InvalidArgumentError("session_id is empty"));
    return;
  }
  std::string key = admin_address + '\n' + session_id;
  auto call = std::make_unique<Call>();
  sluice::v1::Admin::Stub* stub = nullptr;
  SessionMetadata cached;
  bool hit = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (Lookup(key, &cached)) {
      ++hits_;
      hit = true;
    } else if (!closing_) {
      ++calls_;
      stub = StubFor(admin_address);
      call->key = std::move(key);
      call->request.set_session_id(session_id);
      call->context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
      in_flight_.insert(call.get());
    }
  }
  // `done` never runs under mu_: it may fetch again.
  if (hit) {
    done(std::move(cached));
    return;
  }
  if (stub == nullptr) {
    done(absl::CancelledError("session fetcher shutting down"));
    return;
  }
  call->done = std::move(done);
  Call* raw = call.release();  // owned by the callback below
  stub->async()->GetSession(&raw->context, &raw->request, &raw->response,
                            [this, raw](grpc::Status status) { Finished(raw, status); });
}

void SessionFetcher::Finished(Call* raw, const grpc::Status& status) {
  std::unique_ptr<Call> call(raw);
  if (status.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    Store(call->key, call->response);
  }
  if (status.ok()) {
    call->done(std::move(call->response));
  } else {
    call->done(ToAbsl(status));
  }
  std::lock_guard<std::mutex> lock(mu_);
  in_flight_.erase(raw);
  if (in_flight_.empty()) idle_.notify_all();
}

absl::StatusOr<SessionMetadata> SessionFetcher::Fetch(const std::string& admin_address,
                                                      const std::string& session_id,
                                                      absl::Duration timeout) {
  std::promise<absl::StatusOr<SessionMetadata>> promise;
  auto future = promise.get_future();
  FetchAsync(admin_address, session_id, timeout,
             [&promise](absl::StatusOr<SessionMetadata> r) { promise.set_value(std::move(r)); });
  return future.get();
}

uint64_t SessionFetcher::calls() const {
  std::lock_guard<std::mutex> lock(mu_);
  return calls_;
}

uint64_t SessionFetcher::hits() const {
  std::lock_guard<std::mutex> lock(mu_);
  return hits_;
}

}  // namespace sluice::control
