// services/reinject/queue/message_content.cc -- see message_content.h.
#include "services/reinject/queue/message_content.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <gmime/gmime.h>

#include "absl/strings/str_cat.h"

namespace sluice::reinject {

SharedFd::~SharedFd() {
  if (fd_ >= 0) ::close(fd_);
}

absl::StatusOr<MessageContent> MessageContent::OpenFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::NotFoundError(absl::StrCat("open ", path, ": ", std::strerror(errno)));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return absl::InternalError(absl::StrCat("stat ", path, ": ", std::strerror(err)));
  }
  return MessageContent(std::make_shared<SharedFd>(fd), 0, static_cast<uint64_t>(st.st_size));
}

absl::StatusOr<size_t> MessageContent::Read(uint64_t pos, char* buf, size_t n) const {
  if (pos >= size_ || n == 0) return 0;
  if (n > size_ - pos) n = static_cast<size_t>(size_ - pos);
  for (;;) {
    ssize_t got = ::pread(file_->get(), buf, n, static_cast<off_t>(offset_ + pos));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return absl::InternalError(absl::StrCat("read queue content: ", std::strerror(errno)));
    if (got == 0) return absl::DataLossError("queue content shorter than recorded");
    return static_cast<size_t>(got);
  }
}

absl::StatusOr<std::string> MessageContent::ReadAll() const {
  std::string out(size_, '\0');
  uint64_t done = 0;
  while (done < size_) {
    auto n = Read(done, out.data() + done, static_cast<size_t>(size_ - done));
    if (!n.ok()) return n.status();
    done += *n;
  }
  return out;
}

GMimeStream* MessageContent::OpenGMimeStream() const {
  // A file description of its own (not a dup): GMime seeks, and a shared offset would race
  // with another reader of the same file.
  std::string self = absl::StrCat("/proc/self/fd/", file_->get());
  int fd = ::open(self.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return nullptr;
  return g_mime_stream_fs_new_with_bounds(fd, static_cast<gint64>(offset_), static_cast<gint64>(offset_ + size_));
}

}  // namespace sluice::reinject
