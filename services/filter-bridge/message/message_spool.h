// services/filter-bridge/message/message_spool.h
//
// One message's content while the filter chain looks at it: dot-unstuffed CRLF lines as the
// SMTP layer hands them over, kept in memory up to a bound and then in an unlinked temporary
// file in the spool directory (so nothing is left behind, even after a crash). After
// Finish() the header section is parsed into fields (header_section.h) and every byte can be
// read back: the whole content, the body, in chunks.
//
// Append/Finish belong to one owner (the session); after Finish() the spool is read-only
// and its const methods may run on any thread (reads use pread, no shared file offset).
// Disk reads and writes are plain blocking calls, like Postfix's queue file I/O: the
// temporary file is local and small bursts are cheaper than a thread hop.
//
// Never: holds more than memory_limit bytes of content in memory; leaves a file in the
// spool directory; changes a byte of what was appended.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "services/filter-bridge/message/header_section.h"

namespace sluice::filter_bridge {

struct SpoolOptions {
  uint64_t memory_limit = 262144;  // limits.spool_memory_bytes
  std::string dir;                 // temporary files; empty: $TMPDIR or /tmp
  HeaderLimits header_limits;      // bounds of the header parse
  // The stage's count of spooled bytes on disk (lib/smtp/spool_space.h): what this spool
  // writes to its file is added, and taken off when it closes. Null: not counted.
  std::atomic<int64_t>* disk_bytes = nullptr;
};

class MessageSpool {
 public:
  using ChunkSink = std::function<absl::Status(std::string_view)>;
  static constexpr size_t kDefaultChunkBytes = 65536;

  MessageSpool(uint64_t memory_limit, std::string spool_dir);
  explicit MessageSpool(SpoolOptions options);
  // A spool holding only a body (a filter's replacement body): no header is parsed.
  static std::unique_ptr<MessageSpool> ForBody(const SpoolOptions& options);
  ~MessageSpool();
  MessageSpool(const MessageSpool&) = delete;
  MessageSpool& operator=(const MessageSpool&) = delete;

  // Adds content (already dot-unstuffed). After an error every later call fails the same way.
  absl::Status Append(std::string_view content);
  // Ends the content, flushes the file and parses the header. Reads need it.
  absl::Status Finish();

  uint64_t size() const { return size_; }
  bool finished() const { return finished_; }
  bool on_disk() const { return fd_ >= 0; }

  // The header fields, in order, byte-exact (empty for a body-only spool).
  const std::vector<HeaderField>& headers() const { return header_.fields; }
  const HeaderSection& header_section() const { return header_; }
  uint64_t body_offset() const { return header_.body_offset; }
  uint64_t body_size() const { return size_ - header_.body_offset; }

  // Appends bytes [offset, offset+len) (clipped to size()) to *out.
  absl::Status ReadAt(uint64_t offset, size_t len, std::string* out) const;
  // Calls sink with consecutive chunks of [begin, end), each at most chunk_bytes; stops at the
  // first error (the sink's or a read error) and returns it.
  absl::Status ForEachChunk(uint64_t begin, uint64_t end, size_t chunk_bytes,
                            const ChunkSink& sink) const;
  absl::Status ForEachBodyChunk(const ChunkSink& sink,
                                size_t chunk_bytes = kDefaultChunkBytes) const {
    return ForEachChunk(body_offset(), size_, chunk_bytes, sink);
  }

 private:
  MessageSpool(SpoolOptions options, bool parse_header);
  absl::Status SpillToFile();
  absl::Status FlushPending();

  SpoolOptions options_;
  bool parse_header_ = true;
  bool finished_ = false;
  absl::Status error_;
  uint64_t size_ = 0;
  std::string memory_;   // the content while in memory mode
  std::string pending_;  // file mode: bytes not yet written
  int fd_ = -1;          // the unlinked temporary file, file mode only
  int64_t on_disk_ = 0;  // bytes written to fd_, counted in options_.disk_bytes
  HeaderSection header_;
};

// Reads a spool region chunk by chunk, for code that must wait between chunks (a coroutine
// sending each chunk to a peer), where ForEachChunk's callback cannot.
class SpoolReader {
 public:
  SpoolReader(const MessageSpool& spool, uint64_t begin, uint64_t end)
      : spool_(spool), pos_(begin), end_(end) {}
  // Replaces *chunk with the next at most max_bytes; false at the end (or on error: see status()).
  bool Next(size_t max_bytes, std::string* chunk);
  const absl::Status& status() const { return status_; }

 private:
  const MessageSpool& spool_;
  uint64_t pos_;
  uint64_t end_;
  absl::Status status_;
};

}  // namespace sluice::filter_bridge
