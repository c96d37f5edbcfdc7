// services/frontend/restrictions/dns_lookup.cc -- see dns_lookup.h.
#include "services/frontend/restrictions/dns_lookup.h"

#include <ares.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <climits>

#include "absl/strings/str_cat.h"

namespace sluice::frontend::restrictions {

struct DnsLookup::Impl {
  ares_channel channel = nullptr;
};

namespace {

constexpr int kQueryTimeoutMs = 2000;  // per try; the blocklist check has its own deadline
constexpr int kTries = 2;

struct Pending {
  DnsLookup::Done done;
};

void OnAnswer(void* arg, int status, int /*timeouts*/, unsigned char* abuf, int alen) {
  std::unique_ptr<Pending> p(static_cast<Pending*>(arg));
  if (status == ARES_ENOTFOUND || status == ARES_ENODATA) {
    p->done(DnsAnswer{});
    return;
  }
  if (status != ARES_SUCCESS) {
    p->done(absl::UnavailableError(absl::StrCat("dns: ", ares_strerror(status))));
    return;
  }
  ares_addrttl ttls[32];
  int n = 32;
  int rc = ares_parse_a_reply(abuf, alen, nullptr, ttls, &n);
  if (rc == ARES_ENODATA) {
    p->done(DnsAnswer{});
    return;
  }
  if (rc != ARES_SUCCESS) {
    p->done(absl::UnavailableError(absl::StrCat("dns: ", ares_strerror(rc))));
    return;
  }
  DnsAnswer a;
  a.found = n > 0;
  a.ttl_seconds = UINT32_MAX;
  for (int i = 0; i < n; ++i) {
    char text[INET_ADDRSTRLEN] = {};
    inet_ntop(AF_INET, &ttls[i].ipaddr, text, sizeof text);
    a.addresses.emplace_back(text);
    a.ttl_seconds = std::min<uint32_t>(a.ttl_seconds, static_cast<uint32_t>(std::max(0, ttls[i].ttl)));
  }
  if (n == 0) a.ttl_seconds = 0;
  p->done(std::move(a));
}

}  // namespace

absl::StatusOr<std::unique_ptr<DnsLookup>> DnsLookup::Create(const std::string& server) {
  static const int init = ares_library_init(ARES_LIB_INIT_ALL);
  if (init != ARES_SUCCESS) return absl::InternalError(absl::StrCat("c-ares: ", ares_strerror(init)));
  std::unique_ptr<DnsLookup> d(new DnsLookup());
  d->impl_ = std::make_unique<Impl>();
  ares_options opts{};
  opts.timeout = kQueryTimeoutMs;
  opts.tries = kTries;
  opts.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES;
  int rc = ares_init_options(&d->impl_->channel, &opts, ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_FLAGS);
  if (rc != ARES_SUCCESS) return absl::InternalError(absl::StrCat("c-ares: ", ares_strerror(rc)));
  if (!server.empty()) {
    rc = ares_set_servers_ports_csv(d->impl_->channel, server.c_str());
    if (rc != ARES_SUCCESS) {
      ares_destroy(d->impl_->channel);
      d->impl_->channel = nullptr;
      return absl::InvalidArgumentError(absl::StrCat("dns server \"", server, "\": ", ares_strerror(rc)));
    }
  }
  if (::pipe2(d->wake_, O_CLOEXEC | O_NONBLOCK) != 0) return absl::InternalError("dns: pipe failed");
  d->thread_ = std::thread([p = d.get()] { p->Run(); });
  return d;
}

DnsLookup::~DnsLookup() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  if (wake_[1] >= 0) (void)!::write(wake_[1], "x", 1);
  if (thread_.joinable()) thread_.join();
  if (impl_ && impl_->channel != nullptr) ares_destroy(impl_->channel);  // pending callbacks: ARES_EDESTRUCTION
  for (int fd : wake_) {
    if (fd >= 0) ::close(fd);
  }
}

void DnsLookup::LookupA(std::string name, Done done) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.emplace_back(std::move(name), std::move(done));
  }
  (void)!::write(wake_[1], "x", 1);
}

void DnsLookup::Run() {
  ares_channel ch = impl_->channel;
  for (;;) {
    std::deque<std::pair<std::string, Done>> work;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) return;
      work.swap(queue_);
    }
    for (auto& [name, done] : work) {
      ares_query(ch, name.c_str(), 1 /* C_IN */, 1 /* T_A */, OnAnswer, new Pending{std::move(done)});
    }
    // Poll c-ares's sockets and the wake-up pipe, no longer than c-ares's next timeout.
    ares_socket_t socks[ARES_GETSOCK_MAXNUM];
    int bits = ares_getsock(ch, socks, ARES_GETSOCK_MAXNUM);
    std::vector<pollfd> fds;
    fds.push_back(pollfd{wake_[0], POLLIN, 0});
    for (int i = 0; i < ARES_GETSOCK_MAXNUM; ++i) {
      short events = 0;
      if (ARES_GETSOCK_READABLE(bits, i)) events |= POLLIN;
      if (ARES_GETSOCK_WRITABLE(bits, i)) events |= POLLOUT;
      if (events != 0) fds.push_back(pollfd{socks[i], events, 0});
    }
    timeval max{1, 0};
    timeval tv{};
    timeval* t = ares_timeout(ch, &max, &tv);
    int ms = static_cast<int>(t->tv_sec * 1000 + t->tv_usec / 1000) + 1;
    int n = ::poll(fds.data(), fds.size(), ms);
    if (n < 0) continue;  // EINTR
    if (fds[0].revents != 0) {
      char buf[64];
      while (::read(wake_[0], buf, sizeof buf) > 0) {
      }
    }
    bool any = false;
    for (size_t i = 1; i < fds.size(); ++i) {
      if (fds[i].revents == 0) continue;
      any = true;
      ares_socket_t r = (fds[i].revents & (POLLIN | POLLERR | POLLHUP)) ? fds[i].fd : ARES_SOCKET_BAD;
      ares_socket_t w = (fds[i].revents & POLLOUT) ? fds[i].fd : ARES_SOCKET_BAD;
      ares_process_fd(ch, r, w);
    }
    if (!any) ares_process_fd(ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);  // timeouts
  }
}

}  // namespace sluice::frontend::restrictions
