// services/reinject/delivery/mime_downgrade.h
//
// 8BITMIME to 7BIT for a next hop that does not announce 8BITMIME (RFC 6152 §3: 8-bit data
// must not be sent to it), what Postfix's smtp(8) does by default (disable_mime_output_
// conversion = no): every leaf part whose body holds 8-bit data is re-encoded
// quoted-printable (RFC 2045 §6.7), a multipart or message/rfc822 labelled 8bit or binary is
// relabelled 7bit once everything inside it is 7-bit, and a message without MIME-Version
// gets one with its new Content-Transfer-Encoding. A message without any 8-bit byte is left
// alone (sent as queued). The converted copy is an unnamed file (O_TMPFILE) in `temp_dir`,
// read by the relay instead of the queue file and gone when closed, so no copy outlives a
// crash. GMime 3 parses the queue file in place (part bodies stay on disk, not in memory).
//
// Impossible (the relay bounces those recipients, 5.6.3 "conversion required but not
// supported"): 8-bit data in a header field (no transfer encoding covers a header, and
// RFC 2047 rewriting would change what the sender signed), in a message/* leaf such as
// message/delivery-status or message/partial (RFC 2046 §5.2: 7bit/8bit/binary only), in a
// part already declared base64 or quoted-printable (broken), in a multipart's preamble or
// epilogue, or parts nested deeper than kMaxDowngradeDepth.
//
// Never: hands back a copy with a byte >= 0x80 in it (the whole copy is checked before it is
// used); re-encodes a part that is already 7-bit; writes the queue file; leaves a file behind.
#pragma once

#include "services/reinject/queue/message_content.h"

#include <cstdint>
#include <string>
#include <utility>

#include "absl/status/statusor.h"

namespace sluice::reinject {

// MIME nesting beyond this is not converted (Postfix mime_nesting_limit, 100).
inline constexpr int kMaxDowngradeDepth = 100;

// A file descriptor that closes itself.
class OwnedFd {
 public:
  OwnedFd() = default;
  explicit OwnedFd(int fd) : fd_(fd) {}
  ~OwnedFd() { Reset(); }
  OwnedFd(OwnedFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  OwnedFd& operator=(OwnedFd&& other) noexcept {
    if (this != &other) {
      Reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  OwnedFd(const OwnedFd&) = delete;
  OwnedFd& operator=(const OwnedFd&) = delete;

  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }
  void Reset();

 private:
  int fd_ = -1;
};

enum class DowngradeOutcome {
  kUnchanged,   // no 8-bit byte at all: send the queue file as it is
  kConverted,   // send `copy` instead
  kImpossible,  // cannot be made 7-bit: `reason` says why
};

struct Downgrade {
  DowngradeOutcome outcome = DowngradeOutcome::kUnchanged;
  OwnedFd copy;             // kConverted: the 7-bit message, CRLF line ends, read with pread
  uint64_t size_bytes = 0;  // kConverted: its size
  std::string reason;       // kImpossible: in words, for the reply and the DSN
  bool in_header = false;   // kImpossible because a header field holds 8-bit data
};

// Converts the queued message `content`; the copy is an unnamed file in `temp_dir`.
// Blocking (reads and writes files): call it on the blocking pool. An error status is a
// local failure (I/O, out of memory): transient.
absl::StatusOr<Downgrade> DowngradeTo7Bit(const MessageContent& content, const std::string& temp_dir);

}  // namespace sluice::reinject
