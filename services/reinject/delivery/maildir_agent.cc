// services/reinject/delivery/maildir_agent.cc -- see maildir_agent.h.
#include "services/reinject/delivery/maildir_agent.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "lib/observe/log.h"
#include "services/reinject/delivery/blocking_call.h"

namespace sluice::reinject {
namespace {

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      if (fd_ >= 0) ::close(fd_);
      fd_ = other.release();
    }
    return *this;
  }
  int get() const { return fd_; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_;
};

struct Failure {
  int err;
  std::string what;
};

RecipientResult Transient(int index, const Failure& f) {
  RecipientResult r;
  r.index = index;
  r.outcome = DeliveryOutcome::kTransient;
  bool full = f.err == ENOSPC || f.err == EDQUOT;
  r.reply = absl::StrCat(full ? "452 4.2.2 " : "451 4.3.0 ", "maildir delivery failed: ", f.what, ": ",
                         std::strerror(f.err));
  return r;
}

// mkdir, and when it created the directory, fsync of its parent: a new mailbox must not
// vanish in a crash with the first message in it.
bool MakeDir(const std::string& path, Failure* f) {
  if (::mkdir(path.c_str(), 0700) != 0) {
    if (errno == EEXIST) return true;
    *f = {errno, "mkdir " + path};
    return false;
  }
  size_t slash = path.rfind('/');
  std::string parent = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  int fd = ::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0 || ::fsync(fd) != 0) {
    *f = {errno, "fsync " + parent};
    if (fd >= 0) ::close(fd);
    return false;
  }
  ::close(fd);
  return true;
}

bool WriteAll(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// A header value from an envelope address: never lets a CR or LF through.
std::string HeaderSafe(std::string_view s) {
  std::string out;
  for (char c : s) out.push_back(c == '\r' || c == '\n' ? ' ' : c);
  return out;
}

uint64_t Fnv1a(std::string_view s) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

}  // namespace

MaildirAgent::MaildirAgent(MaildirOptions options, asio::any_io_executor blocking)
    : options_(std::move(options)), blocking_(std::move(blocking)) {
  for (char c : options_.hostname.empty() ? std::string("localhost") : options_.hostname) {
    if (c == '/') {
      host_part_ += "\\057";
    } else if (c == ':') {
      host_part_ += "\\072";
    } else {
      host_part_.push_back(c);
    }
  }
}

std::string MaildirAgent::MailboxName(std::string_view address) {
  std::string out;
  for (size_t i = 0; i < address.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(address[i]);
    if (c >= 'A' && c <= 'Z') c = static_cast<unsigned char>(c - 'A' + 'a');
    bool safe = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '@' || c == '_' || c == '+' ||
                c == '=' || c == '-' || (c == '.' && i > 0);
    if (safe) {
      out.push_back(static_cast<char>(c));
    } else {
      out += absl::StrFormat("%%%02X", c);
    }
  }
  if (out.empty()) out = "%00";
  if (out.size() > 200) out = absl::StrCat(out.substr(0, 180), "%", absl::Hex(Fnv1a(out), absl::kZeroPad16));
  return out;
}

std::string MaildirAgent::Destination(const sluice::v1::QueueRecord& record, int recipient_index) const {
  return MailboxName(record.recipients(recipient_index).address());
}

std::string MaildirAgent::DeliveryKey(const sluice::v1::QueueRecord& record, int index) {
  // The address as recorded (not lower-cased: two spellings are two recipients, as before).
  return absl::StrCat("Q", record.queue_id(), "R",
                      absl::Hex(Fnv1a(record.recipients(index).address()), absl::kZeroPad16));
}

std::string MaildirAgent::FileName(const sluice::v1::QueueRecord& record, int index) const {
  // The arrival time leads, as the Maildir convention's delivery time does, so names sort
  // by age; it is part of the entry, so a later attempt computes the same name.
  return absl::StrCat(record.arrived_at().seconds(), ".", DeliveryKey(record, index), ".", host_part_);
}

std::string MaildirAgent::KeyOfFileName(std::string_view name) {
  name = name.substr(0, name.find(':'));  // the info a mail client appends (":2,S")
  size_t first = name.find('.');
  if (first == std::string_view::npos) return "";
  std::string_view rest = name.substr(first + 1);
  std::string_view key = rest.substr(0, rest.find('.'));
  if (key.size() < 3 || key[0] != 'Q' || key.find('R') == std::string_view::npos) return "";
  return std::string(key);
}

bool MaildirAgent::HasKey(const std::string& mailbox, const std::string& key) {
  {
    std::lock_guard<std::mutex> lock(keys_mu_);
    auto it = keys_.find(mailbox);
    if (it != keys_.end()) return it->second.contains(key);
  }
  absl::flat_hash_set<std::string> found;
  for (const char* sub : {"/new", "/cur"}) {
    std::string dir = mailbox + sub;
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) {
      if (errno == ENOENT) continue;  // a mailbox not made yet holds nothing
      observe::Warn("maildir_scan_failed").Kv("path", dir).Kv("error", std::strerror(errno));
      return false;
    }
    while (struct dirent* e = ::readdir(d)) {
      std::string k = KeyOfFileName(e->d_name);
      if (!k.empty()) found.insert(std::move(k));
    }
    ::closedir(d);
  }
  bool has = found.contains(key);
  std::lock_guard<std::mutex> lock(keys_mu_);
  if (keys_total_ + found.size() > kMaxKnownKeys) {
    keys_.clear();
    keys_total_ = 0;
  }
  keys_total_ += found.size();
  keys_[mailbox] = std::move(found);
  return has;
}

void MaildirAgent::AddKey(const std::string& mailbox, const std::string& key) {
  std::lock_guard<std::mutex> lock(keys_mu_);
  auto it = keys_.find(mailbox);
  if (it != keys_.end() && it->second.insert(key).second) ++keys_total_;
}

namespace {

// Hands written files to the batch; completes with their outcomes on the caller's executor.
// A named functor, not a lambda capturing coroutine state (g++ 12, see blocking_call.h).
struct SubmitBatchOp {
  MaildirBatch* batch;
  template <typename Handler>
  void operator()(Handler handler, std::vector<MaildirBatch::File> files) const {
    auto home = asio::prefer(asio::get_associated_executor(handler), asio::execution::outstanding_work.tracked);
    batch->Submit(std::move(files), [handler = std::move(handler), home = std::move(home)](
                                        std::vector<MaildirBatch::Outcome> outcomes) mutable {
      asio::post(home, [handler = std::move(handler), outcomes = std::move(outcomes)]() mutable {
        std::move(handler)(std::move(outcomes));
      });
    });
  }
};

asio::awaitable<std::vector<MaildirBatch::Outcome>> SyncInBatch(MaildirBatch* batch,
                                                                std::vector<MaildirBatch::File> files) {
  return asio::async_initiate<decltype(asio::use_awaitable), void(std::vector<MaildirBatch::Outcome>)>(
      SubmitBatchOp{batch}, asio::use_awaitable, std::move(files));
}

}  // namespace

asio::awaitable<std::vector<RecipientResult>> MaildirAgent::Deliver(const sluice::v1::QueueRecord& record,
                                                                    const MessageContent& content,
                                                                    const std::vector<int>& recipient_indexes,
                                                                    EarlierAttempt earlier) {
  std::vector<Written> written = co_await RunBlocking(blocking_, [this, &record, &content, &recipient_indexes, earlier] {
    std::vector<Written> out;
    for (int index : recipient_indexes) out.push_back(WriteOne(record, content, index, earlier));
    return out;
  });
  std::vector<MaildirBatch::File> files;
  for (Written& w : written) {
    if (w.ok && !w.found) files.push_back(w.file);
  }
  std::vector<MaildirBatch::Outcome> outcomes;
  if (!files.empty()) outcomes = co_await SyncInBatch(&batch_, std::move(files));
  std::vector<RecipientResult> results;
  size_t next = 0;
  for (Written& w : written) {
    if (!w.ok) {
      results.push_back(std::move(w.failure));
      continue;
    }
    RecipientResult r;
    r.index = w.index;
    r.outcome = DeliveryOutcome::kDelivered;
    if (w.found) {
      r.reply = "250 2.0.0 already delivered to maildir";
      results.push_back(std::move(r));
      continue;
    }
    const MaildirBatch::Outcome& o = outcomes.at(next++);
    if (o.err != 0) {
      results.push_back(Transient(w.index, Failure{o.err, o.what}));
      continue;
    }
    AddKey(w.mailbox, w.key);
    r.reply = "250 2.0.0 delivered to maildir";
    results.push_back(std::move(r));
  }
  co_return results;
}

bool MaildirAgent::EnsureMailbox(const std::string& mailbox, bool recheck, int* err, std::string* what) {
  {
    std::lock_guard<std::mutex> lock(known_mu_);
    if (recheck) {
      known_.erase(mailbox);
    } else if (known_.contains(mailbox)) {
      return true;
    }
  }
  Failure f;
  if (!MakeDir(options_.root, &f) || !MakeDir(mailbox, &f) || !MakeDir(mailbox + "/tmp", &f) ||
      !MakeDir(mailbox + "/new", &f) || !MakeDir(mailbox + "/cur", &f)) {
    *err = f.err;
    *what = std::move(f.what);
    return false;
  }
  std::lock_guard<std::mutex> lock(known_mu_);
  known_.insert(mailbox);
  return true;
}

MaildirAgent::Written MaildirAgent::WriteOne(const sluice::v1::QueueRecord& record,
                                             const MessageContent& content, int index, EarlierAttempt earlier) {
  Written w;
  w.index = index;
  auto failed = [&](const Failure& f) {
    w.failure = Transient(index, f);
    return w;
  };
  const std::string& address = record.recipients(index).address();
  Failure f;
  std::string mailbox = absl::StrCat(options_.root, "/", MailboxName(address));
  w.mailbox = mailbox;
  w.key = DeliveryKey(record, index);
  if (earlier == EarlierAttempt::kPossible && HasKey(mailbox, w.key)) {
    // Delivered by an attempt whose end never reached the queue: that copy counts.
    w.ok = true;
    w.found = true;
    already_delivered_.fetch_add(1);
    observe::Info("maildir_already_delivered")
        .Kv("queue_id", record.queue_id())
        .Kv("to", address)
        .Kv("key", w.key);
    return w;
  }
  if (!EnsureMailbox(mailbox, false, &f.err, &f.what)) return failed(f);
  // The added header lines end like the message's first line does.
  char buf[64 * 1024];
  auto first = content.Read(0, buf, sizeof buf);
  if (!first.ok()) return failed({EIO, "read queue file: " + std::string(first.status().message())});
  std::string_view head(buf, *first);
  size_t lf = head.find('\n');
  std::string eol = (lf != std::string_view::npos && (lf == 0 || head[lf - 1] != '\r')) ? "\n" : "\r\n";
  std::string added = absl::StrCat("Return-Path: <", HeaderSafe(record.sender()), ">", eol,
                                   "Delivered-To: ", HeaderSafe(address), eol);

  std::string name = FileName(record, index);
  std::string tmp_path = absl::StrCat(mailbox, "/tmp/", name);
  // O_TRUNC, not O_EXCL: a tmp/ file of this name is our own, left by an attempt that died
  // before its rename (nobody else writes this entry's copy while we hold the entry).
  constexpr int kCreate = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW;
  Fd out(::open(tmp_path.c_str(), kCreate, 0600));
  if (out.get() < 0 && errno == ENOENT) {
    // The mailbox we remembered is gone (removed by hand): make it again, once.
    if (!EnsureMailbox(mailbox, true, &f.err, &f.what)) return failed(f);
    out = Fd(::open(tmp_path.c_str(), kCreate, 0600));
  }
  if (out.get() < 0) return failed({errno, "create " + tmp_path});
  auto fail = [&](int err, std::string what) {
    ::unlink(tmp_path.c_str());
    return failed({err, std::move(what)});
  };
  if (!WriteAll(out.get(), added.data(), added.size())) return fail(errno, "write " + tmp_path);
  uint64_t offset = 0;
  for (;;) {
    auto n = content.Read(offset, buf, sizeof buf);
    if (!n.ok()) return fail(EIO, "read queue file: " + std::string(n.status().message()));
    if (*n == 0) break;
    if (!WriteAll(out.get(), buf, *n)) return fail(errno, "write " + tmp_path);
    offset += *n;
  }
  w.ok = true;
  w.file.fd = out.release();  // the batch syncs and closes it
  w.file.tmp_path = tmp_path;
  w.file.new_path = absl::StrCat(mailbox, "/new/", name);
  w.file.new_dir = mailbox + "/new";
  return w;
}

}  // namespace sluice::reinject
