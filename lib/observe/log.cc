// lib/observe/log.cc -- see log.h.
#include "lib/observe/log.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <ctime>

namespace sluice::observe {
namespace {

std::atomic<int> g_min_level{static_cast<int>(Level::kInfo)};
// Written once before threads start; read-only afterwards.
std::string& StageName() {
  static std::string stage = "sluice";
  return stage;
}

const char* LevelName(Level l) {
  switch (l) {
    case Level::kDebug: return "debug";
    case Level::kInfo: return "info";
    case Level::kWarn: return "warn";
    case Level::kError: return "error";
  }
  return "info";
}

void AppendTimestamp(std::string& out) {
  auto now = std::chrono::system_clock::now();
  auto secs = std::chrono::time_point_cast<std::chrono::seconds>(now);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now - secs).count();
  std::time_t t = std::chrono::system_clock::to_time_t(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  out.append(buf);
}

}  // namespace

void SetStage(std::string_view stage) { StageName().assign(stage); }
void SetMinLevel(Level level) { g_min_level.store(static_cast<int>(level)); }
bool Enabled(Level level) { return static_cast<int>(level) >= g_min_level.load(std::memory_order_relaxed); }

void AppendLogfmtValue(std::string& out, std::string_view value) {
  bool needs_quotes = value.empty();
  for (unsigned char c : value) {
    if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c == 0x7f) {
      needs_quotes = true;
      break;
    }
  }
  if (!needs_quotes) {
    out.append(value);
    return;
  }
  out.push_back('"');
  for (unsigned char c : value) {
    switch (c) {
      case '"': out.append("\\\""); break;
      case '\\': out.append("\\\\"); break;
      case '\n': out.append("\\n"); break;
      case '\r': out.append("\\r"); break;
      case '\t': out.append("\\t"); break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\x%02x", c);
          out.append(buf);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out.push_back('"');
}

LogLine::LogLine(Level level, std::string_view event) : enabled_(Enabled(level)) {
  if (!enabled_) return;
  line_.reserve(256);
  line_.append("ts=");
  AppendTimestamp(line_);
  line_.append(" level=").append(LevelName(level));
  line_.append(" stage=").append(StageName());
  line_.append(" event=");
  AppendLogfmtValue(line_, event);
}

LogLine::~LogLine() {
  if (!enabled_) return;
  line_.push_back('\n');
  const char* p = line_.data();
  size_t left = line_.size();
  while (left > 0) {
    ssize_t n = ::write(STDERR_FILENO, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // nowhere to report a failing stderr
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
}

LogLine& LogLine::Kv(std::string_view key, std::string_view value) {
  if (!enabled_) return *this;
  line_.push_back(' ');
  line_.append(key);
  line_.push_back('=');
  AppendLogfmtValue(line_, value);
  return *this;
}

LogLine& LogLine::Kv(std::string_view key, int64_t value) {
  if (!enabled_) return *this;
  line_.push_back(' ');
  line_.append(key).push_back('=');
  line_.append(std::to_string(value));
  return *this;
}

LogLine& LogLine::Kv(std::string_view key, uint64_t value) {
  if (!enabled_) return *this;
  line_.push_back(' ');
  line_.append(key).push_back('=');
  line_.append(std::to_string(value));
  return *this;
}

LogLine& LogLine::Kv(std::string_view key, double value) {
  if (!enabled_) return *this;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", value);
  line_.push_back(' ');
  line_.append(key).push_back('=');
  line_.append(buf);
  return *this;
}

}  // namespace sluice::observe
