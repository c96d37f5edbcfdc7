// services/frontend/restrictions/restrictions.h
//
// The frontend's restriction lists, evaluated the way Postfix's smtpd_check.c does: one
// ordered list of checks per stage (connect, HELO, MAIL, RCPT, DATA, END-OF-MESSAGE). In a
// list, checks run in order until one answers OK (the rest of that list is skipped), REJECT
// or DEFER (the command is refused; no later list runs). DEFER_IF_PERMIT turns an evaluation
// that ends in a permit into its 4xx; DEFER_IF_REJECT turns a later REJECT into its 4xx.
//
// delay_reject (Postfix smtpd_delay_reject = yes, the default): the connect, HELO and MAIL
// lists are evaluated at each RCPT, before the RCPT list, so every refusal names the sender
// and the recipient, and clients that mishandle an early refusal never see one; the checks
// still start their slow work at connect (Check::Prefetch). With delay_reject off, each list
// is evaluated at its own command (a connect refusal replaces the greeting).
//
// Every refusal is logged once, Postfix's "NOQUEUE: reject: RCPT from name[addr]: REPLY;
// from=<s> to=<r> proto=ESMTP helo=<h>" as one logfmt line (event=reject, check=the check;
// lib/smtp/dialogue_log.h), and counted in sluice_frontend_restriction_refusals_total{check,
// action}. In a session the SMTP session writes that line (it logs every refusal of the
// dialogue) with the note Evaluate hands back; at connect, before a session, Evaluate does. HOLD/DISCARD/PREPEND collect in
// the transaction's Actions for the proxy session to carry out.
//
// Never: reaches the filter stage (every check runs before the filter is involved); refuses
// without logging and counting; lets one check's failure end a session (a check answers 4xx).
#pragma once

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "asio/awaitable.hpp"
#include "lib/smtp/dialogue_log.h"
#include "lib/smtp/reply.h"
#include "services/frontend/frontend_metrics.h"
#include "services/frontend/restrictions/check.h"

namespace sluice::frontend::restrictions {

// What the checks asked of one transaction besides permit/refuse (Postfix access actions).
struct Actions {
  std::vector<std::string> prepend;  // header lines to add above our Received:, deduplicated
  std::optional<std::string> hold;   // hold reason: deliver into the hold queue
  bool discard = false;              // accept and deliver nothing

  void Merge(const std::vector<std::string>& headers, const std::optional<std::string>& hold_reason,
             bool discard_all);
  void Clear() { *this = Actions{}; }
};

class Restrictions {
 public:
  struct Options {
    bool delay_reject = true;
  };
  Restrictions(Options options, FrontendMetrics* metrics) : options_(options), metrics_(metrics) {}

  // Appends `check` to the list of `stage`; at start-up only (not thread-safe).
  void Add(Stage stage, std::shared_ptr<Check> check);
  bool delay_reject() const { return options_.delay_reject; }
  // Are there checks to run when answering `command`?
  bool HasChecksFor(Stage command) const;

  // Lets every check start its slow work for a new session (see Check::Prefetch).
  void Prefetch(const smtp::SessionFacts& facts, asio::any_io_executor executor) const;

  // Evaluates the lists due when answering `request.command` (see delay_reject above) and
  // returns the refusal for the client, or an empty Reply when the command may go on.
  // Actions of the verdicts are merged into `actions`, unless the command is refused.
  // A refusal's check and detail go to `note` for the caller's log line; without a note
  // (at connect) the refusal is logged here.
  asio::awaitable<smtp::Reply> Evaluate(Request request, Actions& actions, smtp::RefusalNote* note = nullptr) const;

 private:
  struct Entry {
    std::shared_ptr<Check> check;
  };
  // The state of one evaluation across the lists it runs.
  struct Pass {
    std::optional<smtp::Reply> defer_if_permit;
    std::optional<smtp::Reply> defer_if_reject;
    const Check* defer_if_permit_check = nullptr;
    Actions actions;
  };
  // The lists evaluated when answering `command`, in Postfix's order (see delay_reject).
  std::vector<Stage> DueLists(Stage command) const;
  enum class ListResult { kPermit, kDunno, kRefused };
  asio::awaitable<ListResult> RunList(Stage stage, Request& request, Pass& pass, smtp::Reply& refusal,
                                      const Check*& refused_by, std::string& detail) const;
  // Counts the refusal and notes (or, without a note, logs) who gave it.
  void Refused(const Request& request, const Check& check, const smtp::Reply& reply, std::string_view detail,
               smtp::RefusalNote* note) const;

  Options options_;
  FrontendMetrics* metrics_;
  std::array<std::vector<Entry>, kStageCount> lists_;
};

// Postfix's client "name[address]" for log lines.
std::string NameAddr(const smtp::SessionFacts& facts);

}  // namespace sluice::frontend::restrictions
