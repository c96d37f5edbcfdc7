// services/filter-bridge/filters/trace_header.cc -- see trace_header.h.
#include "services/filter-bridge/filters/trace_header.h"

#include <cstdio>

namespace sluice::filter_bridge {

std::string FormatFilterTime(double seconds) {
  char buf[32];
  if (seconds < 0) seconds = 0;
  const double ms = seconds * 1000;
  if (ms < 10) {
    std::snprintf(buf, sizeof(buf), "%.1fms", ms);
  } else if (ms < 1000) {
    std::snprintf(buf, sizeof(buf), "%.0fms", ms);
  } else {
    std::snprintf(buf, sizeof(buf), "%.1fs", seconds);
  }
  return buf;
}

std::string TraceHeaderValue(std::string_view hostname,
                             const std::vector<sluice::v1::FilterResult>& results,
                             size_t name_length) {
  std::string out(hostname);
  // A chain without filters still marks what passed this stage, and says why it is bare.
  if (results.empty()) return out + "; no filters";
  size_t line = name_length + 2 + out.size();  // "Name: host"
  for (const auto& r : results) {
    std::string entry = r.filter() + "=" + r.verdict() + " (" + FormatFilterTime(r.seconds()) + ")";
    out.push_back(';');
    if (line + 2 + entry.size() > 78) {
      out.append("\r\n\t");
      line = 1;
    } else {
      out.push_back(' ');
      line += 2;
    }
    out.append(entry);
    line += entry.size();
  }
  return out;
}

}  // namespace sluice::filter_bridge
