// services/filter-bridge/filters/filter_replies.h
//
// How the filter chain builds a verdict's reply from configured or filter-supplied parts;
// the default verdict replies are in lib/smtp/reply.h's replies:: table.
//
// Never: makes a filter failure a 5xx unless on_failure says reject (a decision).
#pragma once

#include <cstdint>
#include <string_view>

#include "absl/status/statusor.h"
#include "lib/smtp/reply.h"

namespace sluice::filter_bridge::filter_replies {


// A verdict reply from configured or filter-supplied parts: `code` must be of the verdict's
// class (5xx for reject, 4xx for tempfail), else `fallback` is used whole. An empty or
// invalid enhanced code becomes the fallback's (x.7.1); an empty text the fallback's text.
smtp::Reply VerdictReply(uint32_t code, std::string_view enhanced, std::string_view text,
                         const smtp::Reply& fallback);

// Checks configured parts of a verdict reply (rules): the code's class and the enhanced
// code's form and class. INVALID_ARGUMENT naming the problem.
absl::Status ValidateVerdictReply(uint32_t code, std::string_view enhanced, bool permanent);

}  // namespace sluice::filter_bridge::filter_replies
