// services/reinject/queue/queue_record_file.cc -- see queue_record_file.h.
#include "services/reinject/queue/queue_record_file.h"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstdint>

#include "absl/strings/str_cat.h"

namespace sluice::reinject {
namespace {

constexpr char kMagic[4] = {'S', 'Q', 'R', '1'};
constexpr size_t kFrameBytes = 12;
constexpr size_t kMaxRecordBytes = 16 << 20;  // 1000 recipients of 1 KiB each fit many times

void PutLe32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint32_t GetLe32(std::string_view in) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(static_cast<unsigned char>(in[i])) << (8 * i);
  return v;
}

uint32_t Crc32(std::string_view bytes) {
  uLong crc = crc32(0L, Z_NULL, 0);
  return static_cast<uint32_t>(
      crc32(crc, reinterpret_cast<const Bytef*>(bytes.data()), static_cast<uInt>(bytes.size())));
}

}  // namespace

std::string EncodeRecord(const sluice::v1::QueueRecord& record) {
  std::string payload;
  record.SerializeToString(&payload);
  std::string out(kMagic, sizeof kMagic);
  PutLe32(out, static_cast<uint32_t>(payload.size()));
  PutLe32(out, Crc32(payload));
  out += payload;
  return out;
}

absl::StatusOr<sluice::v1::QueueRecord> DecodeRecord(std::string_view bytes) {
  if (bytes.size() < kFrameBytes || bytes.substr(0, 4) != std::string_view(kMagic, 4)) {
    return absl::DataLossError("record frame missing or truncated");
  }
  uint32_t length = GetLe32(bytes.substr(4, 4));
  uint32_t crc = GetLe32(bytes.substr(8, 4));
  std::string_view payload = bytes.substr(kFrameBytes);
  if (payload.size() != length) {
    return absl::DataLossError(absl::StrCat("record length ", payload.size(), " != ", length));
  }
  if (Crc32(payload) != crc) return absl::DataLossError("record checksum mismatch");
  sluice::v1::QueueRecord record;
  if (!record.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    return absl::DataLossError("record does not parse");
  }
  return record;
}

absl::StatusOr<sluice::v1::QueueRecord> ReadRecord(const QueueLayout& layout, QueueDir dir,
                                                   std::string_view id) {
  auto bytes = layout.ReadFile(dir, id, kMaxRecordBytes + kFrameBytes + 1);
  if (!bytes.ok()) return bytes.status();
  return DecodeRecord(*bytes);
}

absl::Status WriteTmpRecord(const QueueLayout& layout, std::string_view id, std::string_view bytes) {
  std::string name(id);
  int fd = ::openat(layout.fd(QueueDir::kTmp), name.c_str(),
                    O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return ErrnoStatus(errno, "create tmp/" + name);
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      ::unlinkat(layout.fd(QueueDir::kTmp), name.c_str(), 0);
      return ErrnoStatus(err, "write tmp/" + name);
    }
    done += static_cast<size_t>(n);
  }
  absl::Status synced = layout.Sync(fd);
  ::close(fd);
  if (!synced.ok()) {
    ::unlinkat(layout.fd(QueueDir::kTmp), name.c_str(), 0);
    return absl::Status(synced.code(), absl::StrCat("tmp/", name, ": ", synced.message()));
  }
  return absl::OkStatus();
}

absl::Status ReplaceRecord(const QueueLayout& layout, QueueDir dir, std::string_view id,
                           const sluice::v1::QueueRecord& record) {
  absl::Status s = WriteTmpRecord(layout, id, EncodeRecord(record));
  if (!s.ok()) return s;
  s = layout.Rename(QueueDir::kTmp, id, dir);
  if (!s.ok()) {
    (void)layout.Unlink(QueueDir::kTmp, id);
    return s;
  }
  return layout.SyncDir(dir);
}

}  // namespace sluice::reinject
