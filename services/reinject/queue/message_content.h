// services/reinject/queue/message_content.h
//
// The content of a queue entry as the delivery agents and report writers read it: a byte
// range of an open file (the entry's frame in a segment file, or its large/<ID> file), kept
// open by this handle, so the queue may delete or compact the file meanwhile. Copies share
// the descriptor.
//
//   SLUICE_ASSIGN_OR_RETURN(MessageContent c, store.Content(id));
//   c.Read(pos, buf, n);                       // pread within the range
//   GMimeStream* s = c.OpenGMimeStream();      // for GMime (the 8BITMIME downgrade)
//
// Never: reads outside its range; writes.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

typedef struct _GMimeStream GMimeStream;

namespace sluice::reinject {

// An open descriptor, closed with the last handle.
class SharedFd {
 public:
  explicit SharedFd(int fd) : fd_(fd) {}
  ~SharedFd();
  SharedFd(const SharedFd&) = delete;
  SharedFd& operator=(const SharedFd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

class MessageContent {
 public:
  MessageContent() = default;
  MessageContent(std::shared_ptr<SharedFd> file, uint64_t offset, uint64_t size)
      : file_(std::move(file)), offset_(offset), size_(size) {}
  // A whole file (tests; content kept outside the queue).
  static absl::StatusOr<MessageContent> OpenFile(const std::string& path);

  uint64_t size() const { return size_; }
  // Up to n bytes from `pos`; 0 at the end. INTERNAL on a read error.
  absl::StatusOr<size_t> Read(uint64_t pos, char* buf, size_t n) const;
  // Everything (tests, small messages).
  absl::StatusOr<std::string> ReadAll() const;
  // A new GMime stream over the range (its own descriptor); the caller unrefs it.
  GMimeStream* OpenGMimeStream() const;

 private:
  std::shared_ptr<SharedFd> file_;
  uint64_t offset_ = 0;
  uint64_t size_ = 0;
};

}  // namespace sluice::reinject
