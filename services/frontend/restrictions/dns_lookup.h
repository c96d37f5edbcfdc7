// services/frontend/restrictions/dns_lookup.h
//
// A-record lookups for the DNS blocklists, by c-ares (Debian's libc-ares) on a thread of its
// own: c-ares's channel is not thread-safe, so one thread owns it and polls its sockets;
// sessions hand it names through a queue and get each answer -- the addresses and their
// smallest TTL, or "no such name" -- by a callback, which must only post to the caller's
// executor. The server is the system's (resolv.conf) or one given as HOST:PORT (tests run
// dnsmasq on loopback). No search domains: names are looked up as given.
//
// Never: blocks a session (the blocking poll is on the lookup thread); calls c-ares from any
// other thread; lets a callback run longer than a post.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"

namespace sluice::frontend::restrictions {

struct DnsAnswer {
  bool found = false;                  // false: NXDOMAIN or no A record
  std::vector<std::string> addresses;  // dotted quads
  uint32_t ttl_seconds = 0;            // smallest TTL of the records (0 when not found)
};

class DnsLookup {
 public:
  // `server`: "HOST:PORT" (an address), or "" for the system's resolv.conf.
  static absl::StatusOr<std::unique_ptr<DnsLookup>> Create(const std::string& server);
  ~DnsLookup();
  DnsLookup(const DnsLookup&) = delete;
  DnsLookup& operator=(const DnsLookup&) = delete;

  // Starts looking `name` up; `done` is called once, on the lookup thread, with the answer
  // or an error (timeout, server failure).
  using Done = std::function<void(absl::StatusOr<DnsAnswer>)>;
  void LookupA(std::string name, Done done);

 private:
  DnsLookup() = default;
  void Run();

  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::mutex mu_;
  std::deque<std::pair<std::string, Done>> queue_;
  bool stop_ = false;
  int wake_[2] = {-1, -1};  // a pipe: new work or stop
  std::thread thread_;
};

}  // namespace sluice::frontend::restrictions
