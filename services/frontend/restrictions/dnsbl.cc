// services/frontend/restrictions/dnsbl.cc -- see dnsbl.h.
#include "services/frontend/restrictions/dnsbl.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "asio/experimental/as_tuple.hpp"
#include "asio/ip/address.hpp"
#include "asio/post.hpp"
#include "asio/steady_timer.hpp"
#include "asio/use_awaitable.hpp"
#include "lib/control/limits_store.h"
#include "lib/observe/log.h"

namespace sluice::frontend::restrictions {
namespace {

absl::Status ParseOctet(std::string_view text, std::vector<std::pair<int, int>>& out) {
  auto number = [](std::string_view s, int& v) {
    return absl::SimpleAtoi(absl::string_view(s.data(), s.size()), &v) && v >= 0 && v <= 255;
  };
  if (text.size() >= 2 && text.front() == '[' && text.back() == ']') {
    for (absl::string_view part : absl::StrSplit(absl::string_view(text.data() + 1, text.size() - 2), ';')) {
      std::string_view p(part.data(), part.size());
      size_t dots = p.find("..");
      int lo = 0, hi = 0;
      if (dots == std::string_view::npos) {
        if (!number(p, lo)) return absl::InvalidArgumentError(absl::StrCat("bad octet \"", std::string(text), "\""));
        hi = lo;
      } else if (!number(p.substr(0, dots), lo) || !number(p.substr(dots + 2), hi) || lo > hi) {
        return absl::InvalidArgumentError(absl::StrCat("bad range \"", std::string(text), "\""));
      }
      out.emplace_back(lo, hi);
    }
    return absl::OkStatus();
  }
  int v = 0;
  if (!number(text, v)) return absl::InvalidArgumentError(absl::StrCat("bad octet \"", std::string(text), "\""));
  out.emplace_back(v, v);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<DnsblSite> ParseDnsblSite(std::string_view spec) {
  DnsblSite site;
  std::string_view rest = spec;
  size_t star = rest.rfind('*');
  if (star != std::string_view::npos) {
    if (!absl::SimpleAtoi(absl::string_view(rest.data() + star + 1, rest.size() - star - 1), &site.weight)) {
      return absl::InvalidArgumentError(absl::StrCat(std::string(spec), ": bad weight"));
    }
    rest = rest.substr(0, star);
  }
  size_t eq = rest.find('=');
  if (eq != std::string_view::npos) {
    // Split at the dots outside brackets ("127.0.0.[2..11]" has four octets).
    std::vector<std::string_view> parts;
    std::string_view filter = rest.substr(eq + 1);
    size_t start = 0;
    int depth = 0;
    for (size_t i = 0; i <= filter.size(); ++i) {
      if (i == filter.size() || (filter[i] == '.' && depth == 0)) {
        parts.push_back(filter.substr(start, i - start));
        start = i + 1;
      } else if (filter[i] == '[') {
        ++depth;
      } else if (filter[i] == ']') {
        --depth;
      }
    }
    if (parts.size() != 4) return absl::InvalidArgumentError(absl::StrCat(std::string(spec), ": the filter needs 4 octets"));
    for (size_t i = 0; i < 4; ++i) {
      absl::Status st = ParseOctet(parts[i], site.octets[i]);
      if (!st.ok()) return absl::InvalidArgumentError(absl::StrCat(std::string(spec), ": ", st.message()));
    }
    site.has_filter = true;
    rest = rest.substr(0, eq);
  }
  while (!rest.empty() && rest.back() == '.') rest.remove_suffix(1);
  if (rest.empty() || rest.find_first_of(" \t") != std::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat(std::string(spec), ": bad domain"));
  }
  site.domain = std::string(rest);
  return site;
}

bool DnsblSite::Matches(std::string_view answer_address) const {
  if (!has_filter) return true;
  std::vector<absl::string_view> parts =
      absl::StrSplit(absl::string_view(answer_address.data(), answer_address.size()), '.');
  if (parts.size() != 4) return false;
  for (size_t i = 0; i < 4; ++i) {
    int v = 0;
    if (!absl::SimpleAtoi(parts[i], &v)) return false;
    bool ok = false;
    for (const auto& [lo, hi] : octets[i]) ok = ok || (v >= lo && v <= hi);
    if (!ok) return false;
  }
  return true;
}

std::string ReverseAddress(std::string_view address) {
  std::error_code ec;
  asio::ip::address a = asio::ip::make_address(std::string(address), ec);
  if (ec) return "";
  if (a.is_v6() && a.to_v6().is_v4_mapped()) a = asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
  std::string out;
  if (a.is_v4()) {
    auto b = a.to_v4().to_bytes();
    return absl::StrCat(b[3], ".", b[2], ".", b[1], ".", b[0]);
  }
  static const char kHex[] = "0123456789abcdef";
  auto b = a.to_v6().to_bytes();
  for (int i = 15; i >= 0; --i) {
    out.push_back(kHex[b[i] & 0xf]);
    out.push_back('.');
    out.push_back(kHex[b[i] >> 4]);
    if (i > 0) out.push_back('.');
  }
  return out;
}

std::shared_ptr<Dnsbl::Entry> Dnsbl::Start(const std::string& name) {
  std::shared_ptr<Entry> e;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const Clock::time_point now = Clock::now();
    auto it = cache_.find(name);
    if (it != cache_.end() && (!it->second->done || it->second->expires > now)) return it->second;
    if (++inserts_ % 1024 == 0) {
      absl::erase_if(cache_, [now](const auto& kv) { return kv.second->done && kv.second->expires <= now; });
    }
    e = std::make_shared<Entry>();
    e->started = now;
    cache_[name] = e;
  }
  lookup_->LookupA(name, [this, e](absl::StatusOr<DnsAnswer> answer) { Finish(e, std::move(answer)); });
  return e;
}

void Dnsbl::Finish(const std::shared_ptr<Entry>& e, absl::StatusOr<DnsAnswer> answer) {
  std::shared_ptr<const sluice::v1::Limits> l = limits_->Get();
  std::vector<std::function<void()>> waiters;
  {
    std::lock_guard<std::mutex> lock(mu_);
    uint32_t ttl = 0;  // a failure is not cached
    if (answer.ok()) {
      ttl = answer->found ? answer->ttl_seconds : l->dnsbl_min_ttl_seconds();
      ttl = std::clamp(ttl, l->dnsbl_min_ttl_seconds(), std::max(l->dnsbl_min_ttl_seconds(), l->dnsbl_max_ttl_seconds()));
    }
    e->answer = std::move(answer);
    e->done = true;
    e->expires = Clock::now() + std::chrono::seconds(ttl);
    waiters.swap(e->waiters);
  }
  for (auto& w : waiters) w();
}

asio::awaitable<bool> Dnsbl::Await(std::shared_ptr<Entry> e, Clock::time_point deadline, asio::any_io_executor ex) {
  auto timer = std::make_shared<asio::steady_timer>(ex);
  timer->expires_at(deadline);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (e->done) co_return true;
    e->waiters.push_back([timer, ex] { asio::post(ex, [timer] { timer->cancel(); }); });
  }
  co_await timer->async_wait(asio::experimental::as_tuple(asio::use_awaitable));
  std::lock_guard<std::mutex> lock(mu_);
  co_return e->done;
}

void Dnsbl::Prefetch(const smtp::SessionFacts& facts, asio::any_io_executor /*executor*/) {
  if (relay_.ClientInMynetworks(facts.client_address)) return;
  std::string reversed = ReverseAddress(facts.client_address);
  if (reversed.empty()) return;
  for (const DnsblSite& site : sites_) (void)Start(absl::StrCat(reversed, ".", site.domain));
}

asio::awaitable<Verdict> Dnsbl::Evaluate(const Request& request) {
  if (request.client_trusted) co_return Verdict::Dunno();
  const smtp::SessionFacts& f = *request.facts;
  std::string reversed = ReverseAddress(f.client_address);
  if (reversed.empty()) co_return Verdict::Dunno();
  std::shared_ptr<const sluice::v1::Limits> l = limits_->Get();
  int score = 0;
  const DnsblSite* worst = nullptr;
  for (const DnsblSite& site : sites_) {
    std::shared_ptr<Entry> e = Start(absl::StrCat(reversed, ".", site.domain));
    // The time limit runs from the lookup's start (at connect, usually).
    Clock::time_point deadline = e->started + std::chrono::seconds(l->dnsbl_timeout_seconds());
    bool done = co_await Await(e, deadline, request.executor);
    if (!done) {
      Count("late");  // not listed, as postscreen
      continue;
    }
    bool listed = false;
    bool failed = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      failed = !e->answer.ok();
      if (e->answer.ok() && e->answer->found) {
        for (const std::string& a : e->answer->addresses) listed = listed || site.Matches(a);
      }
    }
    Count(failed ? "error" : listed ? "listed" : "not_listed");
    if (!listed) continue;
    score += site.weight;
    if (site.weight > 0 && (worst == nullptr || site.weight > worst->weight)) worst = &site;
  }
  if (score < threshold_ || worst == nullptr) co_return Verdict::Dunno();
  co_return Verdict::Refuse(Action::kReject, smtp::replies::DnsblBlocked(f.client_address, worst->domain),
                            absl::StrCat("score ", score));
}

}  // namespace sluice::frontend::restrictions
