// services/frontend/admission.cc -- see admission.h.
#include "services/frontend/admission.h"

#include "lib/net/client_key.h"
#include "services/frontend/shared_limits.h"

namespace sluice::frontend {

Admission::Ticket::~Ticket() { a_->Release(client_, shared_); }

std::string Admission::Key(const std::string& address, const sluice::v1::Limits& limits) {
  return net::ClientKey(address, limits.ipv6_client_prefix_length());
}

bool Admission::Count(Window& w, uint32_t limit, Clock::duration unit, Clock::time_point now) {
  if (limit == 0) return true;
  // anvil: a window starts at the first event and lasts one time unit.
  if (w.count == 0 || now - w.start >= unit) {
    w.start = now;
    w.count = 0;
  }
  ++w.count;
  return w.count <= limit;
}

bool Admission::TakeSlot(const sluice::v1::Limits& limits) {
  // The session slot first: a full server refuses everyone alike, exempt or not.
  uint32_t now_sessions = sessions_.fetch_add(1, std::memory_order_acq_rel) + 1;
  if (now_sessions > limits.max_sessions()) {
    GiveSlot();
    return false;
  }
  return true;
}

AdmitDecision Admission::CountConnection(const std::string& client, bool exempt, bool enforce,
                                         const sluice::v1::Limits& limits) {
  Clock::time_point now = Now();
  Clock::duration unit = std::chrono::seconds(std::max<uint32_t>(1, limits.rate_time_unit_seconds()));
  std::lock_guard<std::mutex> lock(mu_);
  MaybeSweep(now, unit);
  Client& c = clients_[client];
  if (exempt) {
    // Counted but not limited (anvil counts every client): when limit_exemptions changes
    // live, the connections this client already holds count against the new limit.
    ++c.connections;
    return AdmitDecision::kAdmit;
  }
  if (enforce && limits.per_client_connection_limit() > 0 && c.connections >= limits.per_client_connection_limit()) {
    return AdmitDecision::kPerClientConnections;
  }
  if (!Count(c.connect_rate, limits.per_client_connection_rate_limit(), unit, now) && enforce) {
    return AdmitDecision::kConnectionRate;
  }
  ++c.connections;
  return AdmitDecision::kAdmit;
}

AdmitDecision Admission::AdmitLocally(const std::string& address, bool exempt, const sluice::v1::Limits& limits,
                                      std::unique_ptr<Ticket>& ticket) {
  const std::string client = Key(address, limits);
  if (!TakeSlot(limits)) return AdmitDecision::kMaxSessions;
  AdmitDecision d = CountConnection(client, exempt, true, limits);
  if (d != AdmitDecision::kAdmit) {
    GiveSlot();
    return d;
  }
  ticket = std::make_unique<Ticket>(this, client, false);
  return d;
}

asio::awaitable<AdmitDecision> Admission::Admit(const std::string& address, bool exempt,
                                                const sluice::v1::Limits& limits, std::unique_ptr<Ticket>& ticket) {
  const std::string client = Key(address, limits);
  if (shared_ == nullptr) co_return AdmitLocally(client, exempt, limits, ticket);
  if (!TakeSlot(limits)) co_return AdmitDecision::kMaxSessions;
  SharedLimits::Verdict v = SharedLimits::Verdict::kUnavailable;
  if (!exempt) {
    v = co_await shared_->AcquireConnection(client, limits.per_client_connection_limit(),
                                            limits.per_client_connection_rate_limit(), limits.rate_time_unit_seconds());
  }
  AdmitDecision d = AdmitDecision::kAdmit;
  switch (v) {
    case SharedLimits::Verdict::kAllowed:
      CountConnection(client, exempt, false, limits);  // ours too: the counts Redis's absence falls back on
      break;
    case SharedLimits::Verdict::kTooManyConnections: d = AdmitDecision::kPerClientConnections; break;
    case SharedLimits::Verdict::kRateExceeded: d = AdmitDecision::kConnectionRate; break;
    case SharedLimits::Verdict::kUnavailable:
      // Exempt, or Redis did not answer: this replica decides, and the shared count learns
      // of the connection (now, or at the next resync).
      d = CountConnection(client, exempt, true, limits);
      if (d == AdmitDecision::kAdmit) shared_->AddConnection(client);
      break;
  }
  if (d != AdmitDecision::kAdmit) {
    GiveSlot();
    co_return d;
  }
  ticket = std::make_unique<Ticket>(this, client, true);
  co_return d;
}

bool Admission::AllowEvent(const std::string& client, bool exempt, uint32_t limit, uint32_t unit_seconds,
                           Window Client::*window) {
  if (exempt || limit == 0) return true;
  Clock::time_point now = Now();
  std::lock_guard<std::mutex> lock(mu_);
  Client& c = clients_[client];
  return Count(c.*window, limit, std::chrono::seconds(std::max<uint32_t>(1, unit_seconds)), now);
}

asio::awaitable<bool> Admission::AllowSharedEvent(const std::string& client, bool exempt, uint32_t limit,
                                                  uint32_t unit_seconds, Window Client::*window, int rate) {
  // Counted here always, so that a fallback decides from a window with history in it.
  bool local = AllowEvent(client, exempt, limit, unit_seconds, window);
  if (shared_ == nullptr || exempt || limit == 0) co_return local;
  SharedLimits::Verdict v =
      co_await shared_->CountEvent(static_cast<SharedLimits::Rate>(rate), client, limit, unit_seconds);
  if (v == SharedLimits::Verdict::kUnavailable) co_return local;
  co_return v == SharedLimits::Verdict::kAllowed;
}

bool Admission::AllowMessageLocally(const std::string& address, bool exempt, const sluice::v1::Limits& limits) {
  const std::string client = Key(address, limits);
  return AllowEvent(client, exempt, limits.per_client_message_rate_limit(), limits.rate_time_unit_seconds(),
                    &Client::message_rate);
}

bool Admission::AllowRecipientLocally(const std::string& address, bool exempt, const sluice::v1::Limits& limits) {
  const std::string client = Key(address, limits);
  return AllowEvent(client, exempt, limits.per_client_recipient_rate_limit(), limits.rate_time_unit_seconds(),
                    &Client::recipient_rate);
}

asio::awaitable<bool> Admission::AllowMessage(const std::string& address, bool exempt,
                                              const sluice::v1::Limits& limits) {
  const std::string client = Key(address, limits);
  bool allowed = co_await AllowSharedEvent(client, exempt, limits.per_client_message_rate_limit(),
                                           limits.rate_time_unit_seconds(), &Client::message_rate,
                                           static_cast<int>(SharedLimits::Rate::kMessage));
  co_return allowed;
}

asio::awaitable<bool> Admission::AllowRecipient(const std::string& address, bool exempt,
                                                const sluice::v1::Limits& limits) {
  const std::string client = Key(address, limits);
  bool allowed = co_await AllowSharedEvent(client, exempt, limits.per_client_recipient_rate_limit(),
                                           limits.rate_time_unit_seconds(), &Client::recipient_rate,
                                           static_cast<int>(SharedLimits::Rate::kRecipient));
  co_return allowed;
}

void Admission::Release(const std::string& client, bool shared) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = clients_.find(client);
    if (it != clients_.end() && it->second.connections > 0) --it->second.connections;
  }
  if (shared && shared_ != nullptr) shared_->ReleaseConnection(client);
  GiveSlot();
}

void Admission::MaybeSweep(Clock::time_point now, Clock::duration unit) {
  // Entries with no connection and only expired windows carry no information: drop them,
  // at most once per time unit, so the map stays as small as the set of active clients.
  if (now - last_sweep_ < unit) return;
  last_sweep_ = now;
  for (auto it = clients_.begin(); it != clients_.end();) {
    const Client& c = it->second;
    auto expired = [&](const Window& w) { return w.count == 0 || now - w.start >= unit; };
    if (c.connections == 0 && expired(c.connect_rate) && expired(c.message_rate) && expired(c.recipient_rate)) {
      clients_.erase(it++);
    } else {
      ++it;
    }
  }
}

size_t Admission::tracked_clients() const {
  std::lock_guard<std::mutex> lock(mu_);
  return clients_.size();
}

}  // namespace sluice::frontend
