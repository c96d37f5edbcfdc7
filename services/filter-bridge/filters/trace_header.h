// services/filter-bridge/filters/trace_header.h
//
// The trace header naming what each filter decided, Received-style at the top of the
// message (config trace_header, default X-Sluice-Filter):
//   X-Sluice-Filter: mx1.example; rules=accept (0.1ms); milter-1=continue (12ms)
// and the in-band hold marker X-Sluice-Hold: <reason> (see filter_chain.h).
//
// Never: carries anything but filter names, verdicts and times (no addresses, no content).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "sluice/v1/session.pb.h"

namespace sluice::filter_bridge {

inline constexpr std::string_view kHoldHeader = "X-Sluice-Hold";

// "0.1ms", "12ms", "1.5s": short and readable.
std::string FormatFilterTime(double seconds);

// The trace header's value text (no leading space): "host; name=verdict (time); ...",
// folded before an entry when the line would pass 78 characters (RFC 5322 §2.1.1);
// "host; no filters" for a chain without filters.
std::string TraceHeaderValue(std::string_view hostname,
                             const std::vector<sluice::v1::FilterResult>& results,
                             size_t name_length);

}  // namespace sluice::filter_bridge
