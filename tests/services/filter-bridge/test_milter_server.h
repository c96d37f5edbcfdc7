// tests/services/filter-bridge/test_milter_server.h
//
// A small but real milter (the filter side of the Sendmail milter protocol) on a loopback
// TCP port or a UNIX socket, for tests: it negotiates, answers each event as scripted
// (continue by default; reject, tempfail, custom reply, skip, progress, modifications at end
// of message), can hang (no reply) or close the connection at a chosen event, and records
// every command it received. Blocking sockets on its own thread; stopped and joined by the
// destructor.
//
// Never: used by production code.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "services/filter-bridge/filters/milter_codec.h"

namespace sluice::filter_bridge::testing {

struct MilterScript {
  uint32_t version = 6;
  uint32_t actions = milter::kActAll;
  uint32_t protocol = 0;  // SMFIP_* flags the milter asks for (NO*, NR_*, leading space)
  std::vector<std::pair<uint32_t, std::string>> macro_lists;
  // Responses to send for a command (all of them, in order); default: one 'c'.
  std::map<char, std::vector<milter::Response>> replies;
  char hang_on = 0;   // never answer this command (the client must time out)
  char close_on = 0;  // close the connection when this command arrives
  std::string raw_on_eom;  // bytes sent verbatim at end of message instead of replies['E']
};

class TestMilterServer {
 public:
  explicit TestMilterServer(MilterScript script, std::string unix_path = "");
  ~TestMilterServer();
  TestMilterServer(const TestMilterServer&) = delete;
  TestMilterServer& operator=(const TestMilterServer&) = delete;

  uint16_t port() const { return port_; }
  std::string address() const;  // inet:127.0.0.1:PORT or unix:PATH
  std::vector<milter::Command> commands() const;  // every command of every connection
  int connections() const { return connections_.load(); }

 private:
  void Serve();
  void Handle(int fd);
  bool ReplyTo(int fd, const milter::Command& c);

  MilterScript script_;
  std::string unix_path_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  mutable std::mutex mu_;
  std::vector<milter::Command> commands_;
  std::thread thread_;
};

}  // namespace sluice::filter_bridge::testing
