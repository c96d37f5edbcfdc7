// lib/observe/log.h
//
// Structured logging: one line per event, logfmt (`ts=… level=info stage=frontend
// event=session_end session=F1A2… client=192.0.2.1 …`), written to stderr with a single
// write(2) so lines from many threads never interleave.
//
//   observe::Info("session_start").Kv("session", id).Kv("client", addr);
//
// The line is emitted when the temporary LogLine is destroyed (end of the statement).
// Never: blocks on anything but the write itself; logs message content or secrets.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace sluice::observe {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

// Process-wide settings, set once at start-up before threads run.
void SetStage(std::string_view stage);
void SetMinLevel(Level level);
bool Enabled(Level level);

class LogLine {
 public:
  LogLine(Level level, std::string_view event);
  ~LogLine();
  LogLine(const LogLine&) = delete;
  LogLine& operator=(const LogLine&) = delete;

  // Values are quoted when they contain spaces, quotes, '=' or control characters;
  // control characters are escaped, so a hostile value cannot forge a line.
  LogLine& Kv(std::string_view key, std::string_view value);
  LogLine& Kv(std::string_view key, const char* value) { return Kv(key, std::string_view(value)); }
  LogLine& Kv(std::string_view key, const std::string& value) { return Kv(key, std::string_view(value)); }
  LogLine& Kv(std::string_view key, int64_t value);
  LogLine& Kv(std::string_view key, uint64_t value);
  LogLine& Kv(std::string_view key, int value) { return Kv(key, static_cast<int64_t>(value)); }
  LogLine& Kv(std::string_view key, unsigned value) { return Kv(key, static_cast<uint64_t>(value)); }
  LogLine& Kv(std::string_view key, long long value) { return Kv(key, static_cast<int64_t>(value)); }
  LogLine& Kv(std::string_view key, unsigned long long value) { return Kv(key, static_cast<uint64_t>(value)); }
  LogLine& Kv(std::string_view key, double value);
  LogLine& Kv(std::string_view key, bool value) { return Kv(key, value ? std::string_view("true") : std::string_view("false")); }

 private:
  bool enabled_;
  std::string line_;
};

inline LogLine Debug(std::string_view event) { return LogLine(Level::kDebug, event); }
inline LogLine Info(std::string_view event) { return LogLine(Level::kInfo, event); }
inline LogLine Warn(std::string_view event) { return LogLine(Level::kWarn, event); }
inline LogLine Error(std::string_view event) { return LogLine(Level::kError, event); }

// Appends `value` to `out` in logfmt value form (quoted/escaped as needed). Exposed for tests.
void AppendLogfmtValue(std::string& out, std::string_view value);

}  // namespace sluice::observe
