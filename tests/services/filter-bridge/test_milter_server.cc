// tests/services/filter-bridge/test_milter_server.cc -- see test_milter_server.h.
#include "tests/services/filter-bridge/test_milter_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

namespace sluice::filter_bridge::testing {
namespace {

bool WriteAll(int fd, const std::string& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::send(fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

// Reads exactly n bytes, waking up now and then to notice a stop request.
bool ReadAll(int fd, char* out, size_t n, const std::atomic<bool>& stop) {
  size_t done = 0;
  while (done < n) {
    pollfd p{fd, POLLIN, 0};
    int r = ::poll(&p, 1, 50);
    if (stop.load()) return false;
    if (r <= 0) continue;
    ssize_t k = ::recv(fd, out + done, n - done, 0);
    if (k <= 0) return false;
    done += static_cast<size_t>(k);
  }
  return true;
}

// Which no-reply flag covers a command.
uint32_t NoReplyFlag(char code) {
  switch (code) {
    case milter::kCmdConnect: return milter::kProtoNoReplyConnect;
    case milter::kCmdHelo: return milter::kProtoNoReplyHelo;
    case milter::kCmdMail: return milter::kProtoNoReplyMail;
    case milter::kCmdRcpt: return milter::kProtoNoReplyRcpt;
    case milter::kCmdData: return milter::kProtoNoReplyData;
    case milter::kCmdHeader: return milter::kProtoNoReplyHeader;
    case milter::kCmdEoh: return milter::kProtoNoReplyEoh;
    case milter::kCmdBody: return milter::kProtoNoReplyBody;
    default: return 0;
  }
}

}  // namespace

TestMilterServer::TestMilterServer(MilterScript script, std::string unix_path)
    : script_(std::move(script)), unix_path_(std::move(unix_path)) {
  if (unix_path_.empty()) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    socklen_t len = sizeof(addr);
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  } else {
    listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, unix_path_.c_str(), sizeof(addr.sun_path) - 1);
    ::unlink(unix_path_.c_str());
    ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  }
  ::listen(listen_fd_, 16);
  thread_ = std::thread([this] { Serve(); });
}

TestMilterServer::~TestMilterServer() {
  stop_ = true;
  thread_.join();
  ::close(listen_fd_);
  if (!unix_path_.empty()) ::unlink(unix_path_.c_str());
}

std::string TestMilterServer::address() const {
  return unix_path_.empty() ? "inet:127.0.0.1:" + std::to_string(port_) : "unix:" + unix_path_;
}

std::vector<milter::Command> TestMilterServer::commands() const {
  std::lock_guard<std::mutex> lock(mu_);
  return commands_;
}

void TestMilterServer::Serve() {
  while (!stop_.load()) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    ++connections_;
    Handle(fd);
    ::close(fd);
  }
}

void TestMilterServer::Handle(int fd) {
  for (;;) {
    char header[4];
    if (!ReadAll(fd, header, 4, stop_)) return;
    const uint32_t len = milter::PacketLength(reinterpret_cast<unsigned char*>(header));
    if (len == 0 || len > (1u << 24)) return;
    std::string packet(len, '\0');
    if (!ReadAll(fd, packet.data(), len, stop_)) return;
    auto command = milter::DecodeCommand(packet[0], std::string_view(packet).substr(1));
    if (!command.ok()) return;  // a real milter drops a confused MTA
    {
      std::lock_guard<std::mutex> lock(mu_);
      commands_.push_back(*command);
    }
    if (command->code == script_.close_on) return;
    if (command->code == milter::kCmdQuit) return;
    if (command->code == script_.hang_on) {
      // Say nothing until the client gives up and closes (or the test ends).
      char c;
      while (ReadAll(fd, &c, 1, stop_)) {
      }
      return;
    }
    if (!ReplyTo(fd, *command)) return;
  }
}

bool TestMilterServer::ReplyTo(int fd, const milter::Command& c) {
  switch (c.code) {
    case milter::kCmdMacro:
    case milter::kCmdAbort:
    case milter::kCmdQuitNc:
      return true;  // no reply to these
    case milter::kCmdOptneg: {
      milter::Response r;
      r.code = milter::kRespOptneg;
      r.optneg = {script_.version, script_.actions, script_.protocol, script_.macro_lists};
      return WriteAll(fd, milter::EncodeResponse(r));
    }
    case milter::kCmdEom:
      if (!script_.raw_on_eom.empty()) return WriteAll(fd, script_.raw_on_eom);
      break;
    default:
      if ((script_.protocol & NoReplyFlag(c.code)) != 0) return true;
      break;
  }
  auto it = script_.replies.find(c.code);
  if (it == script_.replies.end()) {
    milter::Response go_on;
    go_on.code = milter::kRespContinue;
    return WriteAll(fd, milter::EncodeResponse(go_on));
  }
  for (const milter::Response& r : it->second) {
    if (!WriteAll(fd, milter::EncodeResponse(r))) return false;
  }
  return true;
}

}  // namespace sluice::filter_bridge::testing
