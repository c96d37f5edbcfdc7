// tests/services/reinject/testing/peer_process.h
//
// Real next hops for the relay agent tests, started as child processes on loopback:
// Postfix's smtp-sink (SMTP or LMTP, capturing each transaction to a file, answering 4xx/5xx
// or hanging up on chosen commands) and Dovecot's LMTP server (static users in a
// passwd-file, Maildirs under the test's directory). A free port is taken from the kernel
// (bind to port 0, close, hand the number to the peer). Each process is stopped by its PID
// (SIGTERM, then SIGKILL) when the object goes away.
//
// Never: used by production code; leaves a peer running; listens beyond 127.0.0.1.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fcntl.h>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/services/reinject/testing/queue_test_support.h"

namespace sluice::reinject::testing {

inline uint16_t FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  uint16_t port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  ::close(fd);
  return port;
}

inline bool PortOpen(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

// A child process, output to `log`, stopped by PID.
class PeerProcess {
 public:
  PeerProcess(const std::vector<std::string>& argv, const std::string& log) {
    pid_ = ::fork();
    if (pid_ == 0) {
      int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd >= 0) {
        ::dup2(fd, 1);
        ::dup2(fd, 2);
      }
      ::setsid();
      std::vector<char*> args;
      for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
  }
  ~PeerProcess() { Stop(); }
  PeerProcess(const PeerProcess&) = delete;
  PeerProcess& operator=(const PeerProcess&) = delete;

  bool alive() {
    if (pid_ <= 0) return false;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
    return true;
  }

  // Waits (at most 20 s) until something accepts on `port` while this process lives.
  bool WaitPort(uint16_t port) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      if (!alive()) return false;
      if (PortOpen(port)) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

  void Stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 500; ++i) {  // 10 s
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
};

// Postfix smtp-sink on 127.0.0.1:port; each transaction is written to dump_dir/msg.<hex>.
// `flags` are smtp-sink's own (-r RCPT, -f ., -Q DATA, -L for LMTP, ...).
class SmtpSink {
 public:
  static constexpr const char* kBinary = "/usr/sbin/smtp-sink";
  static bool Available() { return ::access(kBinary, X_OK) == 0; }

  SmtpSink(const TempDir& dir, std::vector<std::string> flags, uint16_t port = 0)
      : port_(port != 0 ? port : FreePort()), dump_dir_(dir / ("sink-" + std::to_string(port_))) {
    ::chmod(dir.path().c_str(), 0755);  // smtp-sink writes as nobody
    ::mkdir(dump_dir_.c_str(), 0777);
    ::chmod(dump_dir_.c_str(), 0777);
    std::vector<std::string> argv = {kBinary};
    if (::geteuid() == 0) argv.insert(argv.end(), {"-u", "nobody"});
    argv.insert(argv.end(), {"-h", "sink.test", "-d", dump_dir_ + "/msg."});
    argv.insert(argv.end(), flags.begin(), flags.end());
    argv.push_back("127.0.0.1:" + std::to_string(port_));
    argv.push_back("64");
    process_ = std::make_unique<PeerProcess>(argv, dir / ("sink-" + std::to_string(port_) + ".log"));
    started_ = process_->WaitPort(port_);
  }

  bool started() const { return started_; }
  uint16_t port() const { return port_; }
  std::string target() const { return "127.0.0.1:" + std::to_string(port_); }
  void Stop() { process_->Stop(); }
  // The captured transactions, in no particular order.
  std::vector<std::string> Dumps() const {
    std::vector<std::string> out;
    for (const std::string& name : ListDir(dump_dir_)) out.push_back(ReadFile(dump_dir_ + "/" + name));
    return out;
  }

 private:
  uint16_t port_;
  std::string dump_dir_;
  std::unique_ptr<PeerProcess> process_;
  bool started_ = false;
};

// Dovecot's LMTP server on 127.0.0.1:port with the users given (mail to anyone else is
// refused at RCPT with 550 5.1.1); Maildirs under dir/dovecot/mail/<user>/. A user named
// "full@..." gets a tiny quota, so mail to it fails after the content (552 5.2.2), per
// recipient. With a cert/key pair, STARTTLS is offered.
class DovecotLmtp {
 public:
  static constexpr const char* kBinary = "/usr/sbin/dovecot";
  static bool Available() { return ::access(kBinary, X_OK) == 0 && ::access("/usr/lib/dovecot/lmtp", X_OK) == 0; }

  DovecotLmtp(const TempDir& dir, const std::vector<std::string>& users, const std::string& cert = "",
              const std::string& key = "")
      : port_(FreePort()), root_(dir / "dovecot") {
    ::chmod(dir.path().c_str(), 0755);
    ::mkdir(root_.c_str(), 0755);
    ::mkdir((root_ + "/run").c_str(), 0755);
    ::mkdir((root_ + "/mail").c_str(), 0777);
    ::chmod((root_ + "/mail").c_str(), 0777);
    std::string passwd;
    for (const std::string& u : users) {
      passwd += u + ":::::::";
      if (u.rfind("full@", 0) == 0) passwd += "userdb_quota_rule=*:storage=100B";
      passwd += "\n";
    }
    WriteFile(root_ + "/users", passwd);
    std::string conf =
        "base_dir = " + root_ + "/run\n"
        "state_dir = " + root_ + "/run/state\n"
        "log_path = " + root_ + "/dovecot.log\n"
        "instance_name = sluice-test-" + std::to_string(port_) + "\n"
        "protocols = lmtp\n"
        "listen = 127.0.0.1\n"
        "default_login_user = nobody\n"
        "default_internal_user = nobody\n"
        "default_internal_group = nogroup\n"
        "mail_location = maildir:" + root_ + "/mail/%u\n"
        "mail_plugins = quota\n"
        "plugin {\n  quota = maildir:User quota\n}\n"
        "passdb {\n  driver = passwd-file\n  args = " + root_ + "/users\n}\n"
        "userdb {\n  driver = passwd-file\n  args = " + root_ + "/users\n"
        "  default_fields = uid=nobody gid=nogroup home=" + root_ + "/mail/%u\n}\n"
        "service lmtp {\n  inet_listener lmtp {\n    address = 127.0.0.1\n    port = " + std::to_string(port_) +
        "\n  }\n  unix_listener lmtp {\n    mode = 0666\n  }\n}\n"
        "service anvil {\n  chroot =\n}\nservice stats {\n  chroot =\n}\n";
    if (cert.empty()) {
      conf += "ssl = no\n";
    } else {
      conf += "ssl = yes\nssl_cert = <" + cert + "\nssl_key = <" + key + "\n";
    }
    WriteFile(root_ + "/dovecot.conf", conf);
    process_ = std::make_unique<PeerProcess>(
        std::vector<std::string>{kBinary, "-F", "-c", root_ + "/dovecot.conf"}, root_ + "/stdout.log");
    started_ = process_->WaitPort(port_);
  }

  bool started() const { return started_; }
  std::string target() const { return "127.0.0.1:" + std::to_string(port_); }
  std::string log() const { return ReadFile(root_ + "/dovecot.log") + ReadFile(root_ + "/stdout.log"); }
  // The messages in a user's Maildir new/.
  std::vector<std::string> Mail(const std::string& user) const {
    std::vector<std::string> out;
    std::string dir = root_ + "/mail/" + user + "/new";
    for (const std::string& name : ListDir(dir)) out.push_back(ReadFile(dir + "/" + name));
    return out;
  }

 private:
  uint16_t port_;
  std::string root_;
  std::unique_ptr<PeerProcess> process_;
  bool started_ = false;
};

}  // namespace sluice::reinject::testing
