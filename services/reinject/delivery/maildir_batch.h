// services/reinject/delivery/maildir_batch.h
//
// Maildir deliveries made durable in batches (the Maildir agent's group commit): the files
// that concurrent deliveries have written to their mailboxes' tmp/ are taken together by
// one thread, and for the whole batch
//
//   1. each file is fsynced (the first fsync commits the file system's journal for all of
//      them; the others find their data on disk already) and closed;
//   2. each is renamed from tmp/ into new/ (a file appears in new/ only complete);
//   3. each distinct new/ directory is fsynced once (the names are on disk);
//   4. each delivery learns its files' outcome.
//
// The deliveries' queue entries are then retired by the scheduler, whose remove frames
// travel together in the queue's next commit batch. A batch is whatever is waiting when
// the thread wakes: one delivery alone waits for nothing.
//
// Never: reports a file delivered before its fsync and rename succeeded; leaves a failed
// file in tmp/ or new/; runs a completion while holding its lock.
#pragma once

#include <cerrno>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/functional/any_invocable.h"

namespace sluice::reinject {

class MaildirBatch {
 public:
  struct File {
    int fd = -1;           // written, not yet synced; the batch closes it
    std::string tmp_path;  // MAILBOX/tmp/NAME
    std::string new_path;  // MAILBOX/new/NAME
    std::string new_dir;   // MAILBOX/new
  };
  struct Outcome {
    int err = 0;       // 0: delivered
    std::string what;  // the step that failed
  };

  MaildirBatch();
  ~MaildirBatch();  // finishes what was submitted
  MaildirBatch(const MaildirBatch&) = delete;
  MaildirBatch& operator=(const MaildirBatch&) = delete;

  // Thread-safe; `done` runs on the batch thread with one outcome per file.
  void Submit(std::vector<File> files, absl::AnyInvocable<void(std::vector<Outcome>)> done);

  uint64_t batches() const;  // batches done
  uint64_t files() const;    // files made durable (or failed) so far

 private:
  struct Job {
    std::vector<File> files;
    absl::AnyInvocable<void(std::vector<Outcome>)> done;
  };
  void Run();
  void Commit(std::vector<Job>& jobs);

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> pending_;
  bool stopping_ = false;
  uint64_t batches_ = 0;
  uint64_t files_ = 0;
  std::thread thread_;
};

}  // namespace sluice::reinject
