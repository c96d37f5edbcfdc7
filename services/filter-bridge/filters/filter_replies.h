// services/filter-bridge/filters/filter_replies.h
//
// The replies the filter chain itself originates, in one place, with the texts the config
// schema and Postfix use (milter8.c for milter verdicts and milter_default_action).
// TODO(lib/smtp owner): move these into lib/smtp/reply.h's replies:: table.
//
// Never: makes a filter failure a 5xx unless on_failure says reject (a decision).
#pragma once

#include <cstdint>
#include <string_view>

#include "absl/status/statusor.h"
#include "lib/smtp/reply.h"

namespace sluice::filter_bridge::filter_replies {

smtp::Reply RuleReject();          // 550 5.7.1 Message content rejected
smtp::Reply RuleTempfail();        // 451 4.7.1 Message content deferred
smtp::Reply FilterReject();        // 550 5.7.1 Message rejected          (gRPC REJECT default)
smtp::Reply FilterTempfail();      // 451 4.7.1 Try again later            (gRPC TEMPFAIL default)
smtp::Reply MilterReject();        // 550 5.7.1 Command rejected           (SMFIR_REJECT)
smtp::Reply MilterTempfail();      // 451 4.7.1 Service unavailable - try again later
smtp::Reply FailureTempfail();     // 451 4.7.1 Service unavailable - try again later (on_failure)
smtp::Reply FailureReject();       // 550 5.5.0 Service unavailable       (on_failure: reject)

// A verdict reply from configured or filter-supplied parts: `code` must be of the verdict's
// class (5xx for reject, 4xx for tempfail), else `fallback` is used whole. An empty or
// invalid enhanced code becomes the fallback's (x.7.1); an empty text the fallback's text.
smtp::Reply VerdictReply(uint32_t code, std::string_view enhanced, std::string_view text,
                         const smtp::Reply& fallback);

// Checks configured parts of a verdict reply (rules): the code's class and the enhanced
// code's form and class. INVALID_ARGUMENT naming the problem.
absl::Status ValidateVerdictReply(uint32_t code, std::string_view enhanced, bool permanent);

}  // namespace sluice::filter_bridge::filter_replies
