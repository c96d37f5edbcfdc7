// services/filter-bridge/message/message_spool.cc -- see message_spool.h.
#include "services/filter-bridge/message/message_spool.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>

namespace sluice::filter_bridge {
namespace {

// File mode batches appends into writes of this size.
constexpr size_t kWriteBatchBytes = 65536;

absl::Status ErrnoError(const char* what, int err) {
  return absl::InternalError(std::string(what) + ": " + std::strerror(err));
}

std::string SpoolDirectory(const std::string& configured) {
  if (!configured.empty()) return configured;
  const char* tmp = std::getenv("TMPDIR");
  return (tmp != nullptr && *tmp != '\0') ? std::string(tmp) : std::string("/tmp");
}

}  // namespace

MessageSpool::MessageSpool(uint64_t memory_limit, std::string spool_dir)
    : MessageSpool(SpoolOptions{memory_limit, std::move(spool_dir), HeaderLimits{}}, true) {}

MessageSpool::MessageSpool(SpoolOptions options) : MessageSpool(std::move(options), true) {}

MessageSpool::MessageSpool(SpoolOptions options, bool parse_header)
    : options_(std::move(options)), parse_header_(parse_header) {}

std::unique_ptr<MessageSpool> MessageSpool::ForBody(const SpoolOptions& options) {
  return std::unique_ptr<MessageSpool>(new MessageSpool(options, false));
}

MessageSpool::~MessageSpool() {
  if (fd_ >= 0) ::close(fd_);
  if (options_.disk_bytes != nullptr) options_.disk_bytes->fetch_sub(on_disk_, std::memory_order_relaxed);
}

absl::Status MessageSpool::Append(std::string_view content) {
  if (!error_.ok()) return error_;
  if (finished_) return absl::FailedPreconditionError("spool: append after finish");
  size_ += content.size();
  if (fd_ < 0) {
    if (memory_.size() + content.size() <= options_.memory_limit) {
      memory_.append(content);
      return absl::OkStatus();
    }
    if (absl::Status s = SpillToFile(); !s.ok()) return error_ = s;
  }
  pending_.append(content);
  if (pending_.size() >= kWriteBatchBytes) {
    if (absl::Status s = FlushPending(); !s.ok()) return error_ = s;
  }
  return absl::OkStatus();
}

absl::Status MessageSpool::SpillToFile() {
  std::string path = SpoolDirectory(options_.dir) + "/sluice-spool-XXXXXX";
  int fd = ::mkostemp(path.data(), O_CLOEXEC);
  if (fd < 0) return ErrnoError("spool: cannot create a temporary file", errno);
  // Unlinked at once: the file lives only as long as this descriptor.
  ::unlink(path.c_str());
  fd_ = fd;
  pending_ = std::move(memory_);
  memory_ = std::string();
  return FlushPending();
}

absl::Status MessageSpool::FlushPending() {
  size_t done = 0;
  while (done < pending_.size()) {
    ssize_t n = ::write(fd_, pending_.data() + done, pending_.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("spool: write", errno);
    }
    done += static_cast<size_t>(n);
    on_disk_ += n;
    if (options_.disk_bytes != nullptr) options_.disk_bytes->fetch_add(n, std::memory_order_relaxed);
  }
  pending_.clear();
  return absl::OkStatus();
}

absl::Status MessageSpool::Finish() {
  if (!error_.ok()) return error_;
  if (finished_) return absl::OkStatus();
  if (fd_ >= 0) {
    if (absl::Status s = FlushPending(); !s.ok()) return error_ = s;
    pending_.shrink_to_fit();
  }
  finished_ = true;
  if (!parse_header_) {
    header_ = HeaderSection();
    return absl::OkStatus();
  }
  // Enough bytes to see the header up to its bound, the line after it, and its separator.
  const uint64_t want = std::min<uint64_t>(size_, options_.header_limits.max_bytes + 3);
  std::string prefix;
  if (fd_ < 0) {
    header_ = ParseHeaderSection(std::string_view(memory_).substr(0, want), want == size_,
                                 options_.header_limits);
    return absl::OkStatus();
  }
  if (absl::Status s = ReadAt(0, want, &prefix); !s.ok()) return error_ = s;
  header_ = ParseHeaderSection(prefix, want == size_, options_.header_limits);
  return absl::OkStatus();
}

absl::Status MessageSpool::ReadAt(uint64_t offset, size_t len, std::string* out) const {
  if (!error_.ok()) return error_;
  if (offset >= size_) return absl::OkStatus();
  len = static_cast<size_t>(std::min<uint64_t>(len, size_ - offset));
  if (fd_ < 0) {
    out->append(memory_, offset, len);
    return absl::OkStatus();
  }
  if (!finished_) return absl::FailedPreconditionError("spool: read before finish");
  const size_t base = out->size();
  out->resize(base + len);
  size_t done = 0;
  while (done < len) {
    ssize_t n = ::pread(fd_, out->data() + base + done, len - done,
                        static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      out->resize(base);
      return ErrnoError("spool: read", errno);
    }
    if (n == 0) {
      out->resize(base);
      return absl::DataLossError("spool: temporary file shorter than its content");
    }
    done += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::Status MessageSpool::ForEachChunk(uint64_t begin, uint64_t end, size_t chunk_bytes,
                                        const ChunkSink& sink) const {
  end = std::min(end, size_);
  if (chunk_bytes == 0) chunk_bytes = kDefaultChunkBytes;
  if (fd_ < 0) {
    for (uint64_t pos = begin; pos < end; pos += chunk_bytes) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(chunk_bytes, end - pos));
      if (absl::Status s = sink(std::string_view(memory_).substr(pos, n)); !s.ok()) return s;
    }
    return absl::OkStatus();
  }
  std::string chunk;
  for (uint64_t pos = begin; pos < end; pos += chunk_bytes) {
    chunk.clear();
    const size_t n = static_cast<size_t>(std::min<uint64_t>(chunk_bytes, end - pos));
    if (absl::Status s = ReadAt(pos, n, &chunk); !s.ok()) return s;
    if (absl::Status s = sink(chunk); !s.ok()) return s;
  }
  return absl::OkStatus();
}

bool SpoolReader::Next(size_t max_bytes, std::string* chunk) {
  chunk->clear();
  if (!status_.ok() || pos_ >= end_) return false;
  const size_t n = static_cast<size_t>(std::min<uint64_t>(max_bytes, end_ - pos_));
  status_ = spool_.ReadAt(pos_, n, chunk);
  if (!status_.ok() || chunk->empty()) return false;
  pos_ += chunk->size();
  return true;
}

}  // namespace sluice::filter_bridge
