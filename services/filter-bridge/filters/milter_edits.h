// services/filter-bridge/filters/milter_edits.h
//
// Turns the modification requests a milter sends at end of message (SMFIR_ADDHEADER,
// INSHEADER, CHGHEADER, ADDRCPT, ADDRCPT_PAR, DELRCPT, CHGFROM, REPLBODY, QUARANTINE) into
// the filter decision's edits, with Postfix's semantics: header values get the separating
// space unless the milter negotiated leading spaces, folded values (LF-separated, the
// Sendmail way) become CRLF folds, INSHEADER index 0 is the top, CHGHEADER index 1 is the
// first field of that name and an empty value deletes it, a replacement body is normalized
// to CRLF lines and spooled like the original. Pure apart from the body spool.
//
// Never: accepts a modification the milter did not negotiate (SMFIF_*), a bad header name,
// or a body replacement interrupted by other requests (Postfix refuses it too).
#pragma once

#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "services/filter-bridge/filters/filter.h"
#include "services/filter-bridge/filters/milter_codec.h"
#include "services/filter-bridge/message/crlf_normalizer.h"

namespace sluice::filter_bridge {

class MilterEditCollector {
 public:
  MilterEditCollector(uint32_t actions, bool leading_space, const SpoolOptions& spool_options)
      : actions_(actions), leading_space_(leading_space), spool_options_(spool_options) {}

  // True for the response codes this collector handles.
  static bool IsModification(char code);
  // Applies one modification to *decision.
  absl::Status Apply(const milter::Response& response, FilterDecision* decision);
  // Completes a body replacement, if any, into decision->new_body.
  absl::Status Finish(FilterDecision* decision);
  size_t edits() const { return edits_; }

 private:
  absl::Status Require(uint32_t action, char code) const;
  std::string RawValue(const std::string& value) const;
  absl::Status FlushBody(FilterDecision* decision);

  uint32_t actions_;
  bool leading_space_;
  const SpoolOptions& spool_options_;
  std::unique_ptr<MessageSpool> body_;
  CrlfNormalizer normalizer_;
  bool body_done_ = false;
  size_t edits_ = 0;
};

}  // namespace sluice::filter_bridge
