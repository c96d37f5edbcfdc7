// services/filter-bridge/filters/milter_filter.h
//
// The milter client (FilterConfig kind "milter"): the MTA side of the Sendmail milter
// protocol version 6, as Postfix's milter8 speaks it, so OpenDKIM, rspamd, ClamAV and
// SpamAssassin milters work unchanged. Per mail transaction: connect (connect_timeout),
// negotiate (every action offered, SMFIP_NR_* no-reply flags, SMFIP_SKIP, leading-space
// headers, macro lists), then the connect/helo/mail/rcpt/data events with their macros
// (command_timeout), the header fields, end of header, the body in chunks of at most 65535
// bytes and end of message (content_timeout, renewed by SMFIR_PROGRESS), collecting every
// modification the milter requests at end of message. The verdict:
//   accept / continue        -> continue with the edits (accept before EOM: no edits)
//   reject                   -> 550 5.7.1 Command rejected
//   tempfail / shutdown      -> 451 4.7.1 Service unavailable - try again later
//   replycode                -> the milter's own 4xx/5xx reply
//   discard                  -> discard
//   quarantine (any stage)   -> hold with the milter's reason
//
// Events as they happen (BeginTransaction, used by the relay): connect, HELO and MAIL are
// sent when the client's MAIL arrives -- with the transaction's client (XFORWARD facts: one
// relay session may carry many clients' transactions) -- each RCPT when it arrives, DATA at
// DATA, the content at its end; so a refusal is the sender's reply to that very command: at
// MAIL the transaction's, at RCPT that recipient's only (it is not relayed; the others go on),
// at DATA the message's. Run (every event at the end of DATA, for a chain run on its own)
// judges the whole message by the first refusal.
//
// Any protocol violation, timeout, or disconnect is a failure: the chain applies on_failure
// (default tempfail, Postfix milter_default_action): a broken milter never lets mail through
// unchecked unless configured so.
//
// Never: sends an event the milter opted out of; waits for a reply the milter said it will
// not send; accepts a modification the milter did not negotiate; relays a replacement body
// with bare CR or LF.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "services/filter-bridge/filters/filter.h"
#include "services/filter-bridge/filters/milter_address.h"

namespace sluice::filter_bridge {

class MilterFilter : public Filter {
 public:
  struct Options {
    std::string name;
    MilterAddress address;
    std::chrono::seconds connect_timeout{30};  // milter_connect_timeout
    std::chrono::seconds command_timeout{30};  // milter_command_timeout
    std::chrono::seconds content_timeout{300}; // milter_content_timeout
    std::string daemon_name;  // {daemon_name}: milter_macro_daemon_name; empty: the hostname
  };
  explicit MilterFilter(Options options) : options_(std::move(options)) {}
  asio::awaitable<FilterOutcome> Run(const FilterContext& ctx) override;
  std::unique_ptr<FilterTransaction> BeginTransaction() override;

 private:
  Options options_;
};

// Factory for FilterConfig.milter.
std::unique_ptr<FilterFactory> NewMilterFilterFactory();

}  // namespace sluice::filter_bridge
