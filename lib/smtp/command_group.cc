// lib/smtp/command_group.cc -- see command_group.h.
#include "lib/smtp/command_group.h"

namespace sluice::smtp {

CommandGroup::CommandGroup(SmtpClient& client, std::vector<std::string> lines)
    : client_(client), lines_(std::move(lines)), pipelined_(client.capabilities().pipelining) {}

asio::awaitable<absl::StatusOr<Reply>> CommandGroup::Next() {
  size_t i = next_++;
  if (!pipelined_) co_return co_await client_.Command(lines_[i]);
  if (i == 0) {
    for (const std::string& line : lines_) client_.Queue(line);
    absl::Status sent = co_await client_.SendQueued();
    if (!sent.ok()) co_return sent;
  }
  co_return co_await client_.ReadReply();
}

}  // namespace sluice::smtp
