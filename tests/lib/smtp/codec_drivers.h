// tests/lib/smtp/codec_drivers.h
//
// The read loops a server or client runs around the streaming codec pieces, fed a list of
// chunks: DataReader over DATA content, NextLine/SkipToLineEnd over pipelined commands,
// ParseReply over pipelined replies. Unit tests and fuzzers both drive the codec through
// these, and compare the results of different chunk splits of the same bytes.
// Bookkeeping the loops can check themselves (consumed counts, lengths) is reported inside
// the result (kBrokenLine, "<BROKEN>", chunk_accounting_ok), so a split comparison catches
// it too.
//
// Never: depends on gtest (the fuzz tree has none) or on anything but the codec.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "lib/smtp/data_reader.h"
#include "lib/smtp/line_splitter.h"
#include "lib/smtp/reply_parser.h"

namespace sluice::smtp::test_drivers {

// What DataReader made of some input.
struct DataDecode {
  std::string out;
  size_t consumed = 0;
  bool done = false;
  bool bare_cr = false;
  bool bare_lf = false;
  bool nul = false;
  bool header_done = false;
  uint64_t header_bytes = 0;
  uint64_t content_bytes = 0;
  uint64_t longest_line = 0;
  // Every Feed consumed all of its chunk unless it finished; done() and bare_newline()
  // agreed with the rest.
  bool chunk_accounting_ok = true;

  bool operator==(const DataDecode&) const = default;
};

inline std::ostream& operator<<(std::ostream& os, const DataDecode& d) {
  std::string shown;
  for (char c : d.out) {
    if (c == '\r') {
      shown += "\\r";
    } else if (c == '\n') {
      shown += "\\n";
    } else if (c == '\0') {
      shown += "\\0";
    } else {
      shown.push_back(c);
    }
  }
  return os << "{out=\"" << shown << "\" consumed=" << d.consumed << " done=" << d.done
            << " bare_cr=" << d.bare_cr << " bare_lf=" << d.bare_lf << " nul=" << d.nul << " header_done=" << d.header_done
            << " header_bytes=" << d.header_bytes << " content_bytes=" << d.content_bytes
            << " longest_line=" << d.longest_line << " accounting=" << d.chunk_accounting_ok << "}";
}

// Feeds the chunks in order, as a server does, stopping once the reader is done.
inline DataDecode DecodeData(const std::vector<std::string_view>& chunks) {
  DataReader reader;
  DataDecode d;
  for (std::string_view chunk : chunks) {
    if (d.done) break;
    const DataReader::Result r = reader.Feed(chunk, d.out);
    d.consumed += r.consumed;
    d.done = r.done;
    if (r.done != reader.done() || r.consumed > chunk.size() || (!r.done && r.consumed != chunk.size())) {
      d.chunk_accounting_ok = false;
    }
  }
  d.bare_cr = reader.bare_cr();
  d.bare_lf = reader.bare_lf();
  d.nul = reader.nul();
  d.header_done = reader.header_done();
  d.header_bytes = reader.header_bytes();
  d.content_bytes = reader.content_bytes();
  d.longest_line = reader.longest_line();
  if (reader.bare_newline() != (d.bare_cr || d.bare_lf) || d.content_bytes != d.out.size() ||
      d.header_bytes > d.content_bytes) {
    d.chunk_accounting_ok = false;
  }
  return d;
}

// Markers ReadLines puts among the lines. A line never holds CRLF, so they cannot be
// mistaken for one.
inline constexpr std::string_view kTooLongLine = "\r\n<TOO LONG>";
inline constexpr std::string_view kBrokenLine = "\r\n<BROKEN>";

// A server's command read loop: append what arrived, take every complete line, discard an
// over-long line up to its CRLF. Lines as read, kTooLongLine for a discarded one,
// "\r\n<REST ...>" for an unfinished last line, and kBrokenLine (ending the list) if the
// splitter broke its own contract (line bounds, consumed counts, what a skip keeps).
inline std::vector<std::string> ReadLines(const std::vector<std::string_view>& chunks, size_t max_len) {
  std::vector<std::string> lines;
  std::string buf;
  bool skipping = false;
  for (std::string_view chunk : chunks) {
    buf.append(chunk);
    for (;;) {
      if (skipping) {
        bool found = false;
        const size_t n = SkipToLineEnd(buf, found);
        if (n > buf.size() || (found && (n < 2 || buf.compare(n - 2, 2, "\r\n") != 0))) {
          lines.emplace_back(kBrokenLine);
          return lines;
        }
        buf.erase(0, n);
        if (!found) {
          if (!buf.empty() && buf != "\r") lines.emplace_back(kBrokenLine);
          break;
        }
        skipping = false;
        continue;
      }
      const LineResult r = NextLine(buf, max_len);
      if (r.status == LineStatus::kNeedMore) {
        if (buf.size() >= max_len) lines.emplace_back(kBrokenLine);
        break;
      }
      if (r.status == LineStatus::kTooLong) {
        lines.emplace_back(buf.size() < max_len ? kBrokenLine : kTooLongLine);
        skipping = true;
        continue;
      }
      if (r.consumed != r.line.size() + 2 || r.consumed > max_len || r.line.data() != buf.data() ||
          r.line.find("\r\n") != std::string_view::npos) {
        lines.emplace_back(kBrokenLine);
        return lines;
      }
      lines.emplace_back(r.line);
      buf.erase(0, r.consumed);
    }
  }
  if (!buf.empty() && !skipping) lines.push_back("\r\n<REST " + buf + ">");
  return lines;
}

// A client's reply read loop over a growing buffer: every complete reply in wire form, then
// "<ERROR>" if the stream broke off with a parse error, or "<BROKEN>" if the parser broke
// its contract (a formatted reply starts with a digit, so neither is a reply).
inline std::vector<std::string> ReadReplies(const std::vector<std::string_view>& chunks,
                                            size_t max_line = 512, size_t max_lines = 20) {
  std::vector<std::string> replies;
  std::string buf;
  for (std::string_view chunk : chunks) {
    buf.append(chunk);
    for (;;) {
      Reply r;
      const ReplyParseResult res = ParseReply(buf, r, max_line, max_lines);
      if (res.status == ReplyStatus::kNeedMore) break;
      if (res.status == ReplyStatus::kError) {
        replies.push_back(res.error.ok() ? "<BROKEN>" : "<ERROR>");
        return replies;
      }
      if (res.consumed == 0 || res.consumed > buf.size()) {
        replies.push_back("<BROKEN>");
        return replies;
      }
      replies.push_back(r.Format());
      buf.erase(0, res.consumed);
    }
  }
  return replies;
}

}  // namespace sluice::smtp::test_drivers
