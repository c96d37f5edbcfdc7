// services/frontend/restrictions/table_files.h
//
// The lookup tables of the restriction checks (relay_recipients, client/helo/sender access)
// are plain files, often a Kubernetes ConfigMap volume, where kubelet swaps a whole new
// version in through the `..data` symlink. A TableFiles reads its files as one unit; the
// TableWatcher thread looks at every table's files every restriction_table_check_seconds
// and reloads a table when the identity (device, inode, size, modification time, followed
// through symlinks) of any of its files changed. A reload that fails (a file missing or
// malformed) keeps the table in use and is logged and counted; the next change tries again.
//
// Never: blocks a session (files are read on the watcher's own thread; sessions only load
// an immutable snapshot); serves a half-parsed table.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace sluice::frontend::restrictions {

// One file's text, with its name for error messages ("file:line: …").
struct FileText {
  std::string path;
  std::string text;
};

// What a table is built from: its files, read together.
class TableFiles {
 public:
  explicit TableFiles(std::vector<std::string> paths) : paths_(std::move(paths)) {}
  // Reads every file and remembers their identities; the error names the file.
  absl::StatusOr<std::vector<FileText>> Read();
  // Has any file changed (or appeared, or gone) since the last Read?
  bool Changed() const;
  const std::vector<std::string>& paths() const { return paths_; }

 private:
  std::vector<std::string> paths_;
  std::vector<std::string> identities_;  // parallel to paths_, from the last Read
};

// A table the watcher keeps fresh.
class Reloadable {
 public:
  virtual ~Reloadable() = default;
  virtual std::string_view table_name() const = 0;  // the config key, for logs
  virtual bool Changed() const = 0;
  virtual absl::Status Reload() = 0;
};

// One thread polling every registered table.
class TableWatcher {
 public:
  // `interval` is asked before each round (a live limit); `on_reload(ok)` counts reloads.
  TableWatcher(std::function<std::chrono::milliseconds()> interval, std::function<void(bool ok)> on_reload);
  ~TableWatcher();
  TableWatcher(const TableWatcher&) = delete;
  TableWatcher& operator=(const TableWatcher&) = delete;

  void Watch(std::shared_ptr<Reloadable> table);  // before Start
  void Start();                                   // no thread when nothing is watched
  // One round now, on the caller's thread (tests).
  void CheckOnce();

 private:
  void Run();

  std::function<std::chrono::milliseconds()> interval_;
  std::function<void(bool)> on_reload_;
  std::vector<std::shared_ptr<Reloadable>> tables_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

// A table of type T built from TableFiles by `parse`, served as an immutable snapshot.
template <typename T>
class ReloadingTable : public Reloadable {
 public:
  using Parser = std::function<absl::StatusOr<T>(const std::vector<FileText>&)>;
  ReloadingTable(std::string name, std::vector<std::string> paths, Parser parse)
      : name_(std::move(name)), files_(std::move(paths)), parse_(std::move(parse)) {}

  std::string_view table_name() const override { return name_; }
  bool Changed() const override { return files_.Changed(); }
  absl::Status Reload() override {
    auto texts = files_.Read();
    if (!texts.ok()) return texts.status();
    auto parsed = parse_(*texts);
    if (!parsed.ok()) return parsed.status();
    std::atomic_store(&current_, std::shared_ptr<const T>(std::make_shared<T>(*std::move(parsed))));
    return absl::OkStatus();
  }
  // Never null after a successful first Reload.
  std::shared_ptr<const T> Get() const { return std::atomic_load(&current_); }

 private:
  std::string name_;
  TableFiles files_;
  Parser parse_;
  std::shared_ptr<const T> current_;
};

}  // namespace sluice::frontend::restrictions
