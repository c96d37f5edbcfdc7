// services/reinject/delivery/maildir_agent.h
//
// Local delivery into Maildirs (--deliver=maildir:DIR), what Postfix's local(8) does with
// home_mailbox = Maildir/: one mailbox per recipient, DIR/<recipient>/{tmp,new,cur}, where
// <recipient> is the address lower-cased and made path-safe (MailboxName). Per recipient,
// the standard tmp -> new protocol: create tmp/<unique> (time.M<usec>P<pid>Q<seq>.<host>),
// write "Return-Path: <sender>" and "Delivered-To: <recipient>" (as local(8) prepends
// them) and then the queued message byte for byte; then, in a batch with the files of the
// deliveries running beside it (maildir_batch.h): fsync each file, rename it into new/,
// fsync each new/ once. The added lines end like the message's own lines (CRLF as queued).
//
// Mailboxes are created on first use (mkdir of DIR/<recipient>, tmp/, new/, cur/, each new
// one's parent fsynced) and remembered, so a delivery to a known mailbox makes no mkdir; a
// mailbox removed behind our back is made again when creating its tmp/ file fails.
//
// Any failure is transient (4.3.0, 4.2.2 when the disk is full): a local problem is never
// the sender's fault. The file work runs on the blocking pool.
//
// Never: writes outside DIR (names are escaped, never taken as paths); leaves a partial
// file in new/ (a file appears there only complete and fsynced); alters the message.
#pragma once

#include <atomic>
#include <mutex>
#include <string>

#include "absl/container/flat_hash_set.h"

#include "asio/any_io_executor.hpp"
#include "services/reinject/delivery/delivery_agent.h"
#include "services/reinject/delivery/maildir_batch.h"

namespace sluice::reinject {

struct MaildirOptions {
  std::string root;      // DIR
  std::string hostname;  // in the unique file names
};

class MaildirAgent final : public DeliveryAgent {
 public:
  MaildirAgent(MaildirOptions options, asio::any_io_executor blocking);

  std::string_view name() const override { return "maildir"; }
  std::string Destination(const sluice::v1::QueueRecord& record, int recipient_index) const override;
  asio::awaitable<std::vector<RecipientResult>> Deliver(const sluice::v1::QueueRecord& record,
                                                        const MessageContent& content,
                                                        const std::vector<int>& recipient_indexes) override;

  // The mailbox directory name of an address: lower-cased (ASCII), every byte outside
  // [a-z0-9@._+=-] and a leading '.' written as %XX, so distinct addresses never share a
  // mailbox and no name is "." or "..". Longer than 200 bytes: cut, plus a hash.
  static std::string MailboxName(std::string_view address);

  // The batch that makes this agent's files durable (tests: batches and files counted).
  const MaildirBatch& batch() const { return batch_; }

 private:
  // A recipient's copy written to tmp/ (not yet synced), or why it could not be.
  struct Written {
    int index = -1;
    bool ok = false;
    MaildirBatch::File file;
    RecipientResult failure;
  };
  Written WriteOne(const sluice::v1::QueueRecord& record, const MessageContent& content, int index);
  std::string UniqueName();
  // Creates DIR/<mailbox>/{tmp,new,cur} unless known to exist; remembers it.
  bool EnsureMailbox(const std::string& mailbox, bool recheck, int* err, std::string* what);

  MaildirBatch batch_;
  std::mutex known_mu_;
  absl::flat_hash_set<std::string> known_;  // mailbox paths that exist

  MaildirOptions options_;
  asio::any_io_executor blocking_;
  std::string host_part_;  // hostname with '/' and ':' escaped (maildir convention)
  std::atomic<uint64_t> sequence_{0};
};

}  // namespace sluice::reinject
