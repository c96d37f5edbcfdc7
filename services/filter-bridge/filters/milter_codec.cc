// services/filter-bridge/filters/milter_codec.cc -- see milter_codec.h.
//
// Layouts follow Postfix's milter8.c and Sendmail's libmilter (read for the facts only).
#include "services/filter-bridge/filters/milter_codec.h"

#include <string>

namespace sluice::filter_bridge::milter {
namespace {

constexpr size_t kMaxReplyLines = 32;

void PutU32(std::string& out, uint32_t v) {
  out.push_back(static_cast<char>((v >> 24) & 0xff));
  out.push_back(static_cast<char>((v >> 16) & 0xff));
  out.push_back(static_cast<char>((v >> 8) & 0xff));
  out.push_back(static_cast<char>(v & 0xff));
}

void PutU16(std::string& out, uint16_t v) {
  out.push_back(static_cast<char>((v >> 8) & 0xff));
  out.push_back(static_cast<char>(v & 0xff));
}

// NUL-terminated; a NUL inside the text would end it early on the other side, so it is cut.
void PutString(std::string& out, std::string_view s) {
  out.append(s.substr(0, s.find('\0')));
  out.push_back('\0');
}

absl::Status Malformed(char code, std::string_view why) {
  std::string c = (code >= 33 && code <= 126) ? std::string(1, code) : "0x" + std::to_string(static_cast<unsigned char>(code));
  return absl::DataLossError("milter packet '" + c + "': " + std::string(why));
}

// Sequential reader over one packet's data.
class Reader {
 public:
  Reader(char code, std::string_view data) : code_(code), data_(data) {}
  bool AtEnd() const { return data_.empty(); }
  absl::StatusOr<std::string> String() {
    size_t nul = data_.find('\0');
    if (nul == std::string_view::npos) return Malformed(code_, "string without NUL");
    std::string s(data_.substr(0, nul));
    data_.remove_prefix(nul + 1);
    return s;
  }
  absl::StatusOr<uint32_t> U32() {
    if (data_.size() < 4) return Malformed(code_, "short 32-bit field");
    const auto* p = reinterpret_cast<const unsigned char*>(data_.data());
    uint32_t v = (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
    data_.remove_prefix(4);
    return v;
  }
  absl::StatusOr<uint16_t> U16() {
    if (data_.size() < 2) return Malformed(code_, "short 16-bit field");
    const auto* p = reinterpret_cast<const unsigned char*>(data_.data());
    uint16_t v = static_cast<uint16_t>((p[0] << 8) | p[1]);
    data_.remove_prefix(2);
    return v;
  }
  absl::StatusOr<char> Byte() {
    if (data_.empty()) return Malformed(code_, "missing byte");
    char c = data_[0];
    data_.remove_prefix(1);
    return c;
  }
  absl::Status End() const {
    return data_.empty() ? absl::OkStatus() : Malformed(code_, "left-over data");
  }

 private:
  char code_;
  std::string_view data_;
};

#define MILTER_ASSIGN(lhs, expr)           \
  do {                                     \
    auto milter_v_ = (expr);               \
    if (!milter_v_.ok()) return milter_v_.status(); \
    lhs = std::move(milter_v_).value();    \
  } while (0)

absl::StatusOr<Optneg> DecodeOptneg(Reader& r, bool with_lists) {
  Optneg o;
  MILTER_ASSIGN(o.version, r.U32());
  MILTER_ASSIGN(o.actions, r.U32());
  MILTER_ASSIGN(o.protocol, r.U32());
  if (with_lists) {
    while (!r.AtEnd()) {
      uint32_t stage;
      std::string names;
      MILTER_ASSIGN(stage, r.U32());
      MILTER_ASSIGN(names, r.String());
      o.macro_lists.emplace_back(stage, std::move(names));
    }
  }
  return o;
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

uint32_t PacketLength(const unsigned char h[4]) {
  return (uint32_t{h[0]} << 24) | (uint32_t{h[1]} << 16) | (uint32_t{h[2]} << 8) | h[3];
}

Frame ParseFrame(std::string_view buf, size_t max_packet) {
  Frame f;
  if (buf.size() < 4) return f;
  const uint32_t len = PacketLength(reinterpret_cast<const unsigned char*>(buf.data()));
  if (len == 0 || len > max_packet) {
    f.status = FrameStatus::kError;
    f.error = absl::DataLossError("milter packet length " + std::to_string(len) +
                                  (len == 0 ? " is zero" : " exceeds " + std::to_string(max_packet)));
    return f;
  }
  if (buf.size() - 4 < len) return f;
  f.status = FrameStatus::kComplete;
  f.code = buf[4];
  f.data = buf.substr(5, len - 1);
  f.consumed = 4 + static_cast<size_t>(len);
  return f;
}

std::string EncodePacket(char code, std::string_view data) {
  std::string out;
  out.reserve(5 + data.size());
  PutU32(out, static_cast<uint32_t>(data.size() + 1));
  out.push_back(code);
  out.append(data);
  return out;
}

std::string EncodeCommand(const Command& c) {
  std::string d;
  switch (c.code) {
    case kCmdOptneg:
      PutU32(d, c.optneg.version);
      PutU32(d, c.optneg.actions);
      PutU32(d, c.optneg.protocol);
      break;
    case kCmdMacro:
      d.push_back(c.macro_for);
      for (const auto& [name, value] : c.macros) {
        PutString(d, name);
        PutString(d, value);
      }
      break;
    case kCmdConnect:
      PutString(d, c.hostname);
      d.push_back(c.family);
      if (c.family != 'U') {
        PutU16(d, c.port);
        PutString(d, c.address);
      }
      break;
    case kCmdHelo:
    case kCmdMail:
    case kCmdRcpt:
    case kCmdUnknown:
      for (const std::string& a : c.args) PutString(d, a);
      break;
    case kCmdHeader:
      PutString(d, c.name);
      PutString(d, c.value);
      break;
    case kCmdBody:
      d = c.body;
      break;
    default:  // A E N T Q K: no data
      break;
  }
  return EncodePacket(c.code, d);
}

absl::StatusOr<Command> DecodeCommand(char code, std::string_view data) {
  Command c;
  c.code = code;
  Reader r(code, data);
  switch (code) {
    case kCmdOptneg: {
      MILTER_ASSIGN(c.optneg, DecodeOptneg(r, false));
      break;
    }
    case kCmdMacro: {
      MILTER_ASSIGN(c.macro_for, r.Byte());
      while (!r.AtEnd()) {
        std::string name, value;
        MILTER_ASSIGN(name, r.String());
        MILTER_ASSIGN(value, r.String());
        c.macros.emplace_back(std::move(name), std::move(value));
      }
      break;
    }
    case kCmdConnect: {
      MILTER_ASSIGN(c.hostname, r.String());
      MILTER_ASSIGN(c.family, r.Byte());
      if (c.family != 'U') {
        if (c.family != '4' && c.family != '6' && c.family != 'L') return Malformed(code, "bad family");
        MILTER_ASSIGN(c.port, r.U16());
        MILTER_ASSIGN(c.address, r.String());
      }
      break;
    }
    case kCmdHelo:
    case kCmdUnknown: {
      std::string a;
      MILTER_ASSIGN(a, r.String());
      c.args.push_back(std::move(a));
      break;
    }
    case kCmdMail:
    case kCmdRcpt: {
      do {
        std::string a;
        MILTER_ASSIGN(a, r.String());
        c.args.push_back(std::move(a));
      } while (!r.AtEnd());
      break;
    }
    case kCmdHeader: {
      MILTER_ASSIGN(c.name, r.String());
      MILTER_ASSIGN(c.value, r.String());
      break;
    }
    case kCmdBody:
      c.body = std::string(data);
      return c;
    case kCmdAbort:
    case kCmdEom:
    case kCmdEoh:
    case kCmdData:
    case kCmdQuit:
    case kCmdQuitNc:
      break;
    default:
      return Malformed(code, "unknown command");
  }
  if (absl::Status s = r.End(); !s.ok()) return s;
  return c;
}

std::string EncodeResponse(const Response& x) {
  std::string d;
  switch (x.code) {
    case kRespOptneg:
      PutU32(d, x.optneg.version);
      PutU32(d, x.optneg.actions);
      PutU32(d, x.optneg.protocol);
      for (const auto& [stage, names] : x.optneg.macro_lists) {
        PutU32(d, stage);
        PutString(d, names);
      }
      break;
    case kRespInsHeader:
    case kRespChgHeader:
      PutU32(d, x.index);
      [[fallthrough]];
    case kRespAddHeader:
      PutString(d, x.name);
      PutString(d, x.value);
      break;
    case kRespReplyCode:
    case kRespQuarantine:
    case kRespAddRcpt:
    case kRespDelRcpt:
      PutString(d, x.text);
      break;
    case kRespAddRcptPar:
    case kRespChgFrom:
      PutString(d, x.text);
      if (x.has_args) PutString(d, x.args);
      break;
    case kRespReplBody:
      d = x.text;
      break;
    default:  // a c d f p r s t 4: no data
      break;
  }
  return EncodePacket(x.code, d);
}

absl::StatusOr<Response> DecodeResponse(char code, std::string_view data) {
  Response x;
  x.code = code;
  Reader r(code, data);
  switch (code) {
    case kRespOptneg: {
      MILTER_ASSIGN(x.optneg, DecodeOptneg(r, true));
      break;
    }
    case kRespInsHeader:
    case kRespChgHeader:
      MILTER_ASSIGN(x.index, r.U32());
      [[fallthrough]];
    case kRespAddHeader:
      MILTER_ASSIGN(x.name, r.String());
      MILTER_ASSIGN(x.value, r.String());
      break;
    case kRespReplyCode:
    case kRespQuarantine:
    case kRespAddRcpt:
    case kRespDelRcpt:
      MILTER_ASSIGN(x.text, r.String());
      break;
    case kRespAddRcptPar:
    case kRespChgFrom:
      MILTER_ASSIGN(x.text, r.String());
      if (!r.AtEnd()) {
        MILTER_ASSIGN(x.args, r.String());
        x.has_args = true;
      }
      break;
    case kRespReplBody:
      x.text = std::string(data);
      return x;
    case kRespAccept:
    case kRespContinue:
    case kRespDiscard:
    case kRespConnFail:
    case kRespProgress:
    case kRespReject:
    case kRespSkip:
    case kRespTempfail:
    case kRespShutdown:
      break;
    default:
      return Malformed(code, "unknown response");
  }
  if (absl::Status s = r.End(); !s.ok()) return s;
  return x;
}

absl::StatusOr<Response> DecodeResponsePacket(std::string_view packet, size_t max_packet) {
  Frame f = ParseFrame(packet, max_packet);
  if (f.status == FrameStatus::kError) return f.error;
  if (f.status == FrameStatus::kNeedMore) return absl::DataLossError("milter packet: truncated");
  if (f.consumed != packet.size()) return absl::DataLossError("milter packet: trailing bytes");
  return DecodeResponse(f.code, f.data);
}

absl::StatusOr<smtp::Reply> ParseReplyCode(std::string_view text) {
  smtp::Reply reply;
  size_t lines = 0;
  while (!text.empty()) {
    size_t eol = text.find("\r\n");
    std::string_view line = text.substr(0, eol);
    text = eol == std::string_view::npos ? std::string_view() : text.substr(eol + 2);
    if (++lines > kMaxReplyLines) return absl::DataLossError("milter reply: too many lines");
    if (line.size() < 3 || (line[0] != '4' && line[0] != '5') || !IsDigit(line[1]) ||
        !IsDigit(line[2]) || (line.size() > 3 && line[3] != ' ' && line[3] != '-')) {
      return absl::DataLossError("milter reply: malformed \"" + std::string(line.substr(0, 80)) + "\"");
    }
    const int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    if (reply.code != 0 && code != reply.code) return absl::DataLossError("milter reply: mixed codes");
    reply.code = code;
    std::string_view rest = line.size() > 4 ? line.substr(4) : std::string_view();
    size_t sp = rest.find(' ');
    std::string_view first = rest.substr(0, sp);
    if (smtp::IsEnhancedCode(first) && first[0] == line[0]) {
      if (reply.enhanced.empty()) reply.enhanced = std::string(first);
      rest = sp == std::string_view::npos ? std::string_view() : rest.substr(sp + 1);
    }
    std::string out;
    for (size_t i = 0; i < rest.size(); ++i) {
      if (rest[i] == '%') {
        if (++i >= rest.size()) break;
      }
      out.push_back(rest[i]);
    }
    reply.lines.push_back(std::move(out));
  }
  if (reply.code == 0) return absl::DataLossError("milter reply: empty");
  return reply;
}

}  // namespace sluice::filter_bridge::milter
