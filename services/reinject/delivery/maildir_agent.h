// services/reinject/delivery/maildir_agent.h
//
// Local delivery into Maildirs (--deliver=maildir:DIR), what Postfix's local(8) does with
// home_mailbox = Maildir/: one mailbox per recipient, DIR/<recipient>/{tmp,new,cur}, where
// <recipient> is the address lower-cased and made path-safe (MailboxName). Per recipient,
// the standard tmp -> new protocol: create tmp/<name>, write "Return-Path: <sender>" and
// "Delivered-To: <recipient>" (as local(8) prepends them) and then the queued message byte
// for byte; then, in a batch with the files of the deliveries running beside it
// (maildir_batch.h): fsync each file, rename it into new/, fsync each new/ once. The added
// lines end like the message's own lines (CRLF as queued).
//
// Exactly once. The file's name derives from the queue entry and the recipient, not from
// the moment of delivery (FileName):
//
//     <arrival, Unix seconds>.Q<queue id>R<16 hex digits: hash of the address>.<hostname>
//
// unique (queue ids are), free of '/' and ':' (the hostname's are escaped as \057 and \072,
// the Maildir convention), so a mail client or Dovecot appends its ":2,FLAGS" info as to any
// other file. A delivery that may repeat an earlier one (EarlierAttempt::kPossible: the
// process died after writing the file and before the queue entry's end was on disk) first
// looks for the name's key "Q<id>R<hash>" among the mailbox's files in new/ and cur/,
// whatever flags follow it and whichever host wrote it, and counts a file found as the
// delivery ("250 2.0.0 already delivered", logged as maildir_already_delivered). A
// mailbox's keys are read once (one scan of new/ and cur/) and then kept in memory, with
// each delivery of ours added, so a restart with many entries to redo scans each mailbox
// once. A file the user has deleted meanwhile stays delivered: it was. A file that reached
// new/ again under the same name replaces itself (rename), never a second copy.
//
// Mailboxes are created on first use (mkdir of DIR/<recipient>, tmp/, new/, cur/, each new
// one's parent fsynced) and remembered, so a delivery to a known mailbox makes no mkdir; a
// mailbox removed behind our back is made again when creating its tmp/ file fails.
//
// Any failure is transient (4.3.0, 4.2.2 when the disk is full): a local problem is never
// the sender's fault. The file work runs on the blocking pool.
//
// Never: writes outside DIR (names are escaped, never taken as paths); leaves a partial
// file in new/ (a file appears there only complete and fsynced); alters the message;
// writes a second file for a (queue entry, recipient) whose file it can find.
#pragma once

#include <atomic>
#include <mutex>
#include <string>

#include "absl/container/flat_hash_map.h"
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
                                                        const std::vector<int>& recipient_indexes,
                                                        EarlierAttempt earlier = EarlierAttempt::kNone) override;

  // The mailbox directory name of an address: lower-cased (ASCII), every byte outside
  // [a-z0-9@._+=-] and a leading '.' written as %XX, so distinct addresses never share a
  // mailbox and no name is "." or "..". Longer than 200 bytes: cut, plus a hash.
  static std::string MailboxName(std::string_view address);

  // The batch that makes this agent's files durable (tests: batches and files counted).
  const MaildirBatch& batch() const { return batch_; }

  // The file name of recipient `index`'s copy of `record`, and the key in it that a later
  // attempt looks for ("Q<queue id>R<hash>").
  std::string FileName(const sluice::v1::QueueRecord& record, int index) const;
  static std::string DeliveryKey(const sluice::v1::QueueRecord& record, int index);
  // The key in a Maildir file name ("<time>.<key>.<host>[:2,FLAGS]"); empty when the name
  // is not one of ours.
  static std::string KeyOfFileName(std::string_view name);

  // Deliveries found done by an earlier attempt (counted as delivered, nothing written).
  uint64_t already_delivered() const { return already_delivered_.load(); }

 private:
  // A recipient's copy written to tmp/ (not yet synced), or why it could not be.
  struct Written {
    int index = -1;
    bool ok = false;
    bool found = false;   // delivered by an earlier attempt: nothing written
    std::string mailbox;  // DIR/<mailbox>
    std::string key;      // DeliveryKey
    MaildirBatch::File file;
    RecipientResult failure;
  };
  Written WriteOne(const sluice::v1::QueueRecord& record, const MessageContent& content, int index,
                   EarlierAttempt earlier);
  // Whether `mailbox` holds a file with `key` (new/ or cur/); reads the mailbox's keys on
  // first use. False when the mailbox cannot be read (the delivery then goes ahead).
  bool HasKey(const std::string& mailbox, const std::string& key);
  // Adds a key we delivered to the mailbox's known keys, when they are loaded.
  void AddKey(const std::string& mailbox, const std::string& key);
  // Creates DIR/<mailbox>/{tmp,new,cur} unless known to exist; remembers it.
  bool EnsureMailbox(const std::string& mailbox, bool recheck, int* err, std::string* what);

  MaildirBatch batch_;
  std::mutex known_mu_;
  absl::flat_hash_set<std::string> known_;  // mailbox paths that exist

  MaildirOptions options_;
  asio::any_io_executor blocking_;
  std::string host_part_;  // hostname with '/' and ':' escaped (maildir convention)

  // Keys of the files in new/ and cur/ of the mailboxes where a repeated delivery was
  // looked for. Dropped wholesale past kMaxKnownKeys (read again when next needed).
  static constexpr size_t kMaxKnownKeys = 1 << 20;
  std::mutex keys_mu_;
  absl::flat_hash_map<std::string, absl::flat_hash_set<std::string>> keys_;
  size_t keys_total_ = 0;
  std::atomic<uint64_t> already_delivered_{0};
};

}  // namespace sluice::reinject
