// lib/smtp/command_group.h
//
// A group of commands sent the way RFC 2920 allows: in one write when the server announced
// PIPELINING (§3.1: commands that only change state, e.g. RSET, XFORWARD, MAIL, RCPT), else
// each after the reply to the one before; either way the replies come back one at a time, in
// order. The relaying stages start each transaction this way.
//
// Never: pipelines to a server that did not announce PIPELINING; holds DATA, BDAT or any
// command after which the client must wait (the caller's group ends before them).
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "asio/awaitable.hpp"
#include "lib/smtp/client_session.h"
#include "lib/smtp/reply.h"

namespace sluice::smtp {

class CommandGroup {
 public:
  CommandGroup(SmtpClient& client, std::vector<std::string> lines);

  // The reply to the next command of the group (sending what must go first); the error of
  // a failed write or read. Call at most size() times.
  asio::awaitable<absl::StatusOr<Reply>> Next();
  size_t size() const { return lines_.size(); }

 private:
  SmtpClient& client_;
  std::vector<std::string> lines_;
  const bool pipelined_;
  size_t next_ = 0;
};

}  // namespace sluice::smtp
