// services/reinject/delivery/maildir_batch.cc -- see maildir_batch.h.
#include "services/reinject/delivery/maildir_batch.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <set>

#include "lib/observe/log.h"

namespace sluice::reinject {

MaildirBatch::MaildirBatch() : thread_([this] { Run(); }) {}

MaildirBatch::~MaildirBatch() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void MaildirBatch::Submit(std::vector<File> files, absl::AnyInvocable<void(std::vector<Outcome>)> done) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    pending_.push_back(Job{std::move(files), std::move(done)});
  }
  cv_.notify_one();
}

uint64_t MaildirBatch::batches() const {
  std::lock_guard<std::mutex> lock(mu_);
  return batches_;
}

uint64_t MaildirBatch::files() const {
  std::lock_guard<std::mutex> lock(mu_);
  return files_;
}

void MaildirBatch::Run() {
  std::vector<Job> jobs;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !pending_.empty(); });
      if (pending_.empty()) return;
      while (!pending_.empty()) {
        jobs.push_back(std::move(pending_.front()));
        pending_.pop_front();
      }
    }
    Commit(jobs);
    jobs.clear();
  }
}

void MaildirBatch::Commit(std::vector<Job>& jobs) {
  std::vector<std::vector<Outcome>> outcomes(jobs.size());
  size_t count = 0;
  // 1. The files' data.
  for (size_t j = 0; j < jobs.size(); ++j) {
    outcomes[j].resize(jobs[j].files.size());
    for (size_t i = 0; i < jobs[j].files.size(); ++i) {
      File& f = jobs[j].files[i];
      ++count;
      if (::fsync(f.fd) != 0) outcomes[j][i] = Outcome{errno, "fsync " + f.tmp_path};
      if (::close(f.fd) != 0 && outcomes[j][i].err == 0) outcomes[j][i] = Outcome{errno, "close " + f.tmp_path};
      f.fd = -1;
    }
  }
  // 2. Into new/, complete.
  std::set<std::string> dirs;
  for (size_t j = 0; j < jobs.size(); ++j) {
    for (size_t i = 0; i < jobs[j].files.size(); ++i) {
      const File& f = jobs[j].files[i];
      if (outcomes[j][i].err == 0 && ::rename(f.tmp_path.c_str(), f.new_path.c_str()) != 0) {
        outcomes[j][i] = Outcome{errno, "rename into " + f.new_path};
      }
      if (outcomes[j][i].err != 0) {
        ::unlink(f.tmp_path.c_str());
      } else {
        dirs.insert(f.new_dir);
      }
    }
  }
  // 3. Each new/ once.
  for (const std::string& dir : dirs) {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || ::fsync(fd) != 0) {
      // The files are complete in new/; only their names' durability is in doubt. Retrying
      // would deliver twice, so they count as delivered and the log says so.
      observe::Warn("maildir_dir_fsync_failed").Kv("path", dir).Kv("error", std::strerror(errno));
    }
    if (fd >= 0) ::close(fd);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++batches_;
    files_ += count;
  }
  // 4. Outside the lock.
  for (size_t j = 0; j < jobs.size(); ++j) {
    if (jobs[j].done) jobs[j].done(std::move(outcomes[j]));
  }
}

}  // namespace sluice::reinject
