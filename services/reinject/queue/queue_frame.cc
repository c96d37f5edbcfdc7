// services/reinject/queue/queue_frame.cc -- see queue_frame.h.
#include "services/reinject/queue/queue_frame.h"

#include <zlib.h>

#include <cstring>

#include "absl/strings/str_cat.h"

namespace sluice::reinject {
namespace {

constexpr char kMagic[4] = {'S', 'Q', 'F', '1'};

void PutLe32(char* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

uint32_t GetLe32(const char* in) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(static_cast<unsigned char>(in[i])) << (8 * i);
  return v;
}

uint32_t Crc32(uint32_t crc, std::string_view bytes) {
  return static_cast<uint32_t>(
      crc32(crc, reinterpret_cast<const Bytef*>(bytes.data()), static_cast<uInt>(bytes.size())));
}

uint32_t HeaderCrc(const char* header, std::string_view id) {
  return Crc32(Crc32(0, std::string_view(header, 16)), id);
}

// Header and id of a frame; the payload follows from the caller.
void AppendHead(std::string& out, FrameType type, std::string_view id, size_t payload_bytes, uint32_t payload_crc,
                uint8_t flags = 0) {
  char h[kFrameHeaderBytes] = {};
  std::memcpy(h, kMagic, 4);
  h[4] = static_cast<char>(type);
  h[5] = static_cast<char>(id.size());
  h[6] = static_cast<char>(flags);
  PutLe32(h + 8, static_cast<uint32_t>(payload_bytes));
  PutLe32(h + 12, payload_crc);
  PutLe32(h + 16, HeaderCrc(h, id));
  out.append(h, sizeof h);
  out.append(id.data(), id.size());
}

}  // namespace

absl::StatusOr<ParsedFrame> ParseFrame(std::string_view bytes) {
  if (bytes.size() < kFrameHeaderBytes) {
    if (std::memcmp(bytes.data(), kMagic, std::min<size_t>(4, bytes.size())) == 0) {
      return absl::OutOfRangeError("frame header cut short");
    }
    return absl::DataLossError("not a frame");
  }
  const char* h = bytes.data();
  if (std::memcmp(h, kMagic, 4) != 0) return absl::DataLossError("not a frame");
  uint8_t type = static_cast<uint8_t>(h[4]);
  size_t id_len = static_cast<uint8_t>(h[5]);
  uint8_t flags = static_cast<uint8_t>(h[6]);
  if (id_len == 0 || id_len > kMaxFrameIdBytes || (flags & ~kFrameFlagReceived) != 0 || h[7] != 0 ||
      (type != static_cast<uint8_t>(FrameType::kRecord) && type != static_cast<uint8_t>(FrameType::kRemove) &&
       type != static_cast<uint8_t>(FrameType::kHandoffMark))) {
    return absl::DataLossError("bad frame header");
  }
  if (bytes.size() < kFrameHeaderBytes + id_len) return absl::OutOfRangeError("frame id cut short");
  std::string_view id = bytes.substr(kFrameHeaderBytes, id_len);
  if (GetLe32(h + 16) != HeaderCrc(h, id)) return absl::DataLossError("frame header checksum mismatch");
  size_t payload_len = GetLe32(h + 8);
  if (payload_len > kMaxFramePayloadBytes) return absl::DataLossError("frame payload too long");
  size_t size = kFrameHeaderBytes + id_len + payload_len;
  if (bytes.size() < size) return absl::OutOfRangeError("frame payload cut short");
  std::string_view payload = bytes.substr(kFrameHeaderBytes + id_len, payload_len);
  if (GetLe32(h + 12) != Crc32(0, payload)) return absl::DataLossError("frame payload checksum mismatch");
  return ParsedFrame{static_cast<FrameType>(type), flags, id, payload, size};
}

size_t FindNextFrame(std::string_view bytes, size_t from) {
  for (size_t pos = from; pos + kFrameHeaderBytes <= bytes.size(); ++pos) {
    const void* hit = std::memchr(bytes.data() + pos, kMagic[0], bytes.size() - pos);
    if (hit == nullptr) return std::string_view::npos;
    pos = static_cast<size_t>(static_cast<const char*>(hit) - bytes.data());
    if (ParseFrame(bytes.substr(pos)).ok()) return pos;
  }
  return std::string_view::npos;
}

size_t InlineContentOffset(std::string_view id, size_t record_bytes) {
  return kFrameHeaderBytes + id.size() + 4 + record_bytes;
}

std::string EncodeRecordFrame(const sluice::v1::QueueLogRecord& log, std::string_view inline_content,
                              uint8_t flags) {
  const std::string& id = log.record().queue_id();
  std::string record;
  log.SerializeToString(&record);
  char len[4];
  PutLe32(len, static_cast<uint32_t>(record.size()));
  uint32_t crc = Crc32(Crc32(Crc32(0, std::string_view(len, 4)), record), inline_content);
  std::string out;
  out.reserve(kFrameHeaderBytes + id.size() + 4 + record.size() + inline_content.size());
  AppendHead(out, FrameType::kRecord, id, 4 + record.size() + inline_content.size(), crc, flags);
  out.append(len, 4);
  out += record;
  out.append(inline_content.data(), inline_content.size());
  return out;
}

std::string EncodeRemoveFrame(std::string_view id) {
  std::string out;
  AppendHead(out, FrameType::kRemove, id, 0, Crc32(0, std::string_view()));
  return out;
}

std::string EncodeHandoffMarkFrame(std::string_view id, const sluice::v1::QueueHandoffMark& mark) {
  std::string payload;
  mark.SerializeToString(&payload);
  std::string out;
  AppendHead(out, FrameType::kHandoffMark, id, payload.size(), Crc32(0, payload));
  out += payload;
  return out;
}

absl::StatusOr<sluice::v1::QueueHandoffMark> DecodeHandoffMark(std::string_view payload) {
  sluice::v1::QueueHandoffMark mark;
  if (!mark.ParseFromArray(payload.data(), static_cast<int>(payload.size())) || mark.peer().empty()) {
    return absl::DataLossError("not a hand-off mark");
  }
  return mark;
}

absl::StatusOr<RecordPayload> DecodeRecordPayload(std::string_view payload) {
  if (payload.size() < 4) return absl::DataLossError("record payload cut short");
  size_t record_len = GetLe32(payload.data());
  if (record_len > payload.size() - 4) return absl::DataLossError("record length past the frame");
  RecordPayload out;
  if (!out.log.ParseFromArray(payload.data() + 4, static_cast<int>(record_len))) {
    return absl::DataLossError("record does not parse");
  }
  out.content_offset = 4 + record_len;
  out.content = payload.substr(out.content_offset);
  if (out.log.has_content() && !out.content.empty()) {
    return absl::DataLossError("record has inline content and a content reference");
  }
  return out;
}

}  // namespace sluice::reinject
