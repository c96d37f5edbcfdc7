// services/reinject/receive/receive_metrics.cc -- see receive_metrics.h.
#include "services/reinject/receive/receive_metrics.h"

namespace sluice::reinject {

ReceiveMetrics::ReceiveMetrics(prometheus::Registry& r)
    : connections(r, "sluice_reinject_connections_total", "SMTP connections by admission outcome.",
                  {{"outcome", {"accepted", "not_authorized", "draining"}}}),
      sessions_active(observe::AddGauge(r, "sluice_reinject_sessions_active", "SMTP sessions open now.")),
      transactions(r, "sluice_reinject_transactions_total", "Mail transactions by outcome.",
                   {{"outcome", {"queued", "held", "queue_full", "write_error", "aborted", "too_many_hops"}}}),
      hold_marks(r, "sluice_reinject_hold_marks_total",
                 "X-Sluice-Hold marks seen: honoured (proven to come from our filter stage) or ignored.",
                 {{"outcome", {"honoured", "ignored"}}}),
      input_refusals(r, "sluice_reinject_input_refusals_total",
                     "Sessions or messages refused for what the upstream sent: a bare CR/LF or a NUL in "
                     "the content, or unauthorized pipelining.",
                     {{"rule", {"bare_newline", "nul_character", "unauth_pipelining"}}}) {}

}  // namespace sluice::reinject
