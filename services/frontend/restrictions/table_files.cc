// services/frontend/restrictions/table_files.cc -- see table_files.h.
#include "services/frontend/restrictions/table_files.h"

#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "lib/observe/log.h"

namespace sluice::frontend::restrictions {
namespace {

// stat(2) follows symlinks: a ConfigMap's `..data` swap changes the inode behind the name.
std::string Identity(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return "missing";
  return absl::StrCat(st.st_dev, ":", st.st_ino, ":", st.st_size, ":", st.st_mtim.tv_sec, ".", st.st_mtim.tv_nsec);
}

}  // namespace

absl::StatusOr<std::vector<FileText>> TableFiles::Read() {
  // Identities first: a failed read is not retried until something changes again.
  identities_.clear();
  for (const std::string& path : paths_) identities_.push_back(Identity(path));
  std::vector<FileText> out;
  for (const std::string& path : paths_) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
    std::ostringstream text;
    text << in.rdbuf();
    out.push_back(FileText{path, text.str()});
  }
  return out;
}

bool TableFiles::Changed() const {
  for (size_t i = 0; i < paths_.size(); ++i) {
    if (i >= identities_.size() || Identity(paths_[i]) != identities_[i]) return true;
  }
  return false;
}

TableWatcher::TableWatcher(std::function<std::chrono::milliseconds()> interval, std::function<void(bool)> on_reload)
    : interval_(std::move(interval)), on_reload_(std::move(on_reload)) {}

TableWatcher::~TableWatcher() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void TableWatcher::Watch(std::shared_ptr<Reloadable> table) { tables_.push_back(std::move(table)); }

void TableWatcher::Start() {
  if (tables_.empty()) return;
  thread_ = std::thread([this] { Run(); });
}

void TableWatcher::CheckOnce() {
  for (const auto& t : tables_) {
    if (!t->Changed()) continue;
    absl::Status st = t->Reload();
    if (on_reload_) on_reload_(st.ok());
    if (st.ok()) {
      observe::Info("table_reloaded").Kv("table", t->table_name());
    } else {
      observe::Warn("table_reload_failed").Kv("table", t->table_name()).Kv("error", std::string(st.message()));
    }
  }
}

void TableWatcher::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    cv_.wait_for(lock, interval_(), [this] { return stop_; });
    if (stop_) break;
    lock.unlock();
    CheckOnce();
    lock.lock();
  }
}

}  // namespace sluice::frontend::restrictions
