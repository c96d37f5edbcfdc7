// services/frontend/admission.cc -- see admission.h.
#include "services/frontend/admission.h"

namespace sluice::frontend {

Admission::Ticket::~Ticket() { a_->Release(client_, counted_); }

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

AdmitDecision Admission::Admit(const std::string& client, bool exempt, const sluice::v1::Limits& limits,
                               std::unique_ptr<Ticket>& ticket) {
  // The session slot first: a full server refuses everyone alike, exempt or not.
  uint32_t now_sessions = sessions_.fetch_add(1, std::memory_order_acq_rel) + 1;
  if (now_sessions > limits.max_sessions()) {
    sessions_.fetch_sub(1, std::memory_order_acq_rel);
    return AdmitDecision::kMaxSessions;
  }
  Clock::time_point now = Now();
  Clock::duration unit = std::chrono::seconds(std::max<uint32_t>(1, limits.rate_time_unit_seconds()));
  std::lock_guard<std::mutex> lock(mu_);
  MaybeSweep(now, unit);
  Client& c = clients_[client];
  if (exempt) {
    // Counted but not limited (anvil counts every client): when limit_exemptions changes
    // live, the connections this client already holds count against the new limit.
    ++c.connections;
    ticket = std::make_unique<Ticket>(this, client, true);
    return AdmitDecision::kAdmit;
  }
  if (limits.per_client_connection_limit() > 0 && c.connections >= limits.per_client_connection_limit()) {
    sessions_.fetch_sub(1, std::memory_order_acq_rel);
    return AdmitDecision::kPerClientConnections;
  }
  if (!Count(c.connect_rate, limits.per_client_connection_rate_limit(), unit, now)) {
    sessions_.fetch_sub(1, std::memory_order_acq_rel);
    return AdmitDecision::kConnectionRate;
  }
  ++c.connections;
  ticket = std::make_unique<Ticket>(this, client, true);
  return AdmitDecision::kAdmit;
}

bool Admission::AllowEvent(const std::string& client, bool exempt, uint32_t limit, uint32_t unit_seconds,
                           Window Client::*window) {
  if (exempt || limit == 0) return true;
  Clock::time_point now = Now();
  std::lock_guard<std::mutex> lock(mu_);
  Client& c = clients_[client];
  return Count(c.*window, limit, std::chrono::seconds(std::max<uint32_t>(1, unit_seconds)), now);
}

bool Admission::AllowMessage(const std::string& client, bool exempt, const sluice::v1::Limits& limits) {
  return AllowEvent(client, exempt, limits.per_client_message_rate_limit(), limits.rate_time_unit_seconds(),
                    &Client::message_rate);
}

bool Admission::AllowRecipient(const std::string& client, bool exempt, const sluice::v1::Limits& limits) {
  return AllowEvent(client, exempt, limits.per_client_recipient_rate_limit(), limits.rate_time_unit_seconds(),
                    &Client::recipient_rate);
}

void Admission::Release(const std::string& client, bool counted) {
  if (counted) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = clients_.find(client);
    if (it != clients_.end() && it->second.connections > 0) --it->second.connections;
  }
  sessions_.fetch_sub(1, std::memory_order_acq_rel);
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
