// services/filter-bridge/filters/milter_codec.h
//
// The Sendmail milter protocol, version 6 (as libmilter speaks it: OpenDKIM, rspamd, ClamAV),
// as pure functions: framing, every MTA command and every filter response, both directions
// encoded and decoded, so the codec is unit-tested and fuzzed without a socket
// (DecodeResponse is the fuzz entry point for what a filter sends us).
//
// Wire format: a packet is a 4-byte big-endian length (command byte + data), the command
// byte, the data. Strings are NUL-terminated; integers 32-bit big-endian (ports 16-bit).
//
// Never: reads past the data it was given; accepts a packet whose data does not match its
// command's layout exactly (missing NUL, left-over bytes, unknown command) or longer than
// the caller's bound.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "lib/smtp/reply.h"

namespace sluice::filter_bridge::milter {

inline constexpr uint32_t kProtocolVersion = 6;

// Commands, MTA to filter (SMFIC_*).
enum : char {
  kCmdAbort = 'A', kCmdBody = 'B', kCmdConnect = 'C', kCmdMacro = 'D', kCmdEom = 'E',
  kCmdHelo = 'H', kCmdQuitNc = 'K', kCmdHeader = 'L', kCmdMail = 'M', kCmdEoh = 'N',
  kCmdOptneg = 'O', kCmdQuit = 'Q', kCmdRcpt = 'R', kCmdData = 'T', kCmdUnknown = 'U',
};

// Responses, filter to MTA (SMFIR_*).
enum : char {
  kRespAddRcpt = '+', kRespDelRcpt = '-', kRespAddRcptPar = '2', kRespShutdown = '4',
  kRespAccept = 'a', kRespReplBody = 'b', kRespContinue = 'c', kRespDiscard = 'd',
  kRespChgFrom = 'e', kRespConnFail = 'f', kRespAddHeader = 'h', kRespInsHeader = 'i',
  kRespChgHeader = 'm', kRespProgress = 'p', kRespQuarantine = 'q', kRespReject = 'r',
  kRespSkip = 's', kRespTempfail = 't', kRespReplyCode = 'y', kRespOptneg = 'O',
};

// Actions the filter may take (SMFIF_*), negotiated in OPTNEG.
enum : uint32_t {
  kActAddHeaders = 0x01, kActChangeBody = 0x02, kActAddRcpt = 0x04, kActDelRcpt = 0x08,
  kActChangeHeaders = 0x10, kActQuarantine = 0x20, kActChangeFrom = 0x40,
  kActAddRcptPar = 0x80, kActSetSymList = 0x100,
  kActAll = 0x1ff,
};

// Protocol flags (SMFIP_*): events the filter does not want, replies it will not send.
enum : uint32_t {
  kProtoNoConnect = 1u << 0, kProtoNoHelo = 1u << 1, kProtoNoMail = 1u << 2,
  kProtoNoRcpt = 1u << 3, kProtoNoBody = 1u << 4, kProtoNoHeaders = 1u << 5,
  kProtoNoEoh = 1u << 6, kProtoNoReplyHeader = 1u << 7, kProtoNoUnknown = 1u << 8,
  kProtoNoData = 1u << 9, kProtoSkip = 1u << 10, kProtoRcptRej = 1u << 11,
  kProtoNoReplyConnect = 1u << 12, kProtoNoReplyHelo = 1u << 13, kProtoNoReplyMail = 1u << 14,
  kProtoNoReplyRcpt = 1u << 15, kProtoNoReplyData = 1u << 16, kProtoNoReplyUnknown = 1u << 17,
  kProtoNoReplyEoh = 1u << 18, kProtoNoReplyBody = 1u << 19, kProtoHeaderLeadingSpace = 1u << 20,
};
// What this MTA offers: every v6 event flag and no-reply flag, SKIP and leading space (the
// set Postfix offers for protocol version 6).
inline constexpr uint32_t kOfferedProtocol = 0x1fffff;

// Macro stages of the OPTNEG symbol lists (SMFIM_*).
enum : uint32_t {
  kStageConnect = 0, kStageHelo = 1, kStageMail = 2, kStageRcpt = 3, kStageData = 4,
  kStageEom = 5, kStageEoh = 6,
};

// Body chunks are at most this long (libmilter's MILTER_CHUNK_SIZE).
inline constexpr size_t kMaxBodyChunk = 65535;

struct Optneg {
  uint32_t version = kProtocolVersion;
  uint32_t actions = 0;
  uint32_t protocol = 0;
  // Filter reply only: macro names per stage, "{a} b {c}" (SMFIF_SETSYMLIST).
  std::vector<std::pair<uint32_t, std::string>> macro_lists;
  bool operator==(const Optneg&) const = default;
};

// One MTA command. The fields used depend on `code` (see the comments).
struct Command {
  char code = 0;
  Optneg optneg;                                            // O
  char macro_for = 0;                                       // D: the command the macros belong to
  std::vector<std::pair<std::string, std::string>> macros;  // D: name, value
  std::string hostname;                                     // C
  char family = 'U';                                        // C: '4', '6', 'L' (unix), 'U' (unknown)
  uint16_t port = 0;                                        // C (not for 'U')
  std::string address;                                      // C (not for 'U')
  std::vector<std::string> args;                            // H (1), M, R (path then ESMTP args), U (1)
  std::string name;                                         // L
  std::string value;                                        // L
  std::string body;                                         // B
  bool operator==(const Command&) const = default;
};

// One filter response. The fields used depend on `code`.
struct Response {
  char code = 0;
  Optneg optneg;      // O
  uint32_t index = 0; // i (0: top), m (1: first occurrence)
  std::string name;   // h i m: header name
  std::string value;  // h i m: header value (m: empty = delete)
  std::string text;   // y: reply text; q: reason; + - 2: recipient; e: sender; b: body bytes
  std::string args;   // 2 e: optional ESMTP arguments
  bool has_args = false;
  bool operator==(const Response&) const = default;
};

// Framing. A complete packet at the front of `buf`.
enum class FrameStatus { kComplete, kNeedMore, kError };
struct Frame {
  FrameStatus status = FrameStatus::kNeedMore;
  char code = 0;
  std::string_view data;  // points into buf
  size_t consumed = 0;    // whole packet length
  absl::Status error;     // kError: zero length or longer than max_packet
};
Frame ParseFrame(std::string_view buf, size_t max_packet);
std::string EncodePacket(char code, std::string_view data);

// The length field's packet length (command byte + data), from the first 4 bytes.
uint32_t PacketLength(const unsigned char header[4]);

std::string EncodeCommand(const Command& command);
absl::StatusOr<Command> DecodeCommand(char code, std::string_view data);
std::string EncodeResponse(const Response& response);
absl::StatusOr<Response> DecodeResponse(char code, std::string_view data);

// Fuzz entry point: one whole packet (length, code, data) as a filter would send it.
absl::StatusOr<Response> DecodeResponsePacket(std::string_view packet, size_t max_packet);

// SMFIR_REPLYCODE text ("550 5.7.1 text", possibly several CRLF-separated lines) as a Reply:
// a 4xx or 5xx code, the enhanced code when present and of the same class; "%%" is a '%'
// (libmilter doubles them, Sendmail uses the text as a format).
absl::StatusOr<smtp::Reply> ParseReplyCode(std::string_view text);

}  // namespace sluice::filter_bridge::milter
