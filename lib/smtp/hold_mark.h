// lib/smtp/hold_mark.h
//
// The in-band hold mark: how the filter stage tells the after-filter stage to put a message
// on hold (quarantine) -- the header field
//   X-Sluice-Hold: <reason>; mac=<64 hex digits>
// at the top of the relayed message, where mac = HMAC-SHA256(key, "sluice-hold-v1" NUL
// <envelope sender> NUL <reason>). The key is a per-deployment secret both stages read from
// a file (hold_mark_key_file: the filter-bridge signs, reinject verifies), so a mark is
// honoured only when it was written by a filter stage holding the key -- never when a
// sender, or a filter stage that passes unknown headers through (a Postfix or amavisd
// stage), supplies one. The sender in the MAC ties a mark to its transaction's sender.
// Without a key the filter stage writes the bare reason (a Postfix after-filter's
// header_checks /^X-Sluice-Hold:/ HOLD still matches) and reinject trusts a mark only from a
// peer with a verified client certificate.
//
// Never: accepts a mark whose MAC does not verify (compared in constant time); accepts a
// key shorter than 32 bytes; lets a CR or LF of a reason into the field.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace sluice::smtp {

inline constexpr std::string_view kHoldMarkField = "X-Sluice-Hold";

class HoldMarkKey {
 public:
  // The key: the file's bytes, trailing white space dropped (e.g. `openssl rand -hex 32`).
  static absl::StatusOr<HoldMarkKey> Load(const std::string& path);
  static absl::StatusOr<HoldMarkKey> FromSecret(std::string secret);

  // The field value (after "X-Sluice-Hold:") marking a message of `sender` held for `reason`.
  std::string Sign(std::string_view sender, std::string_view reason) const;
  // The reason when `value` (as it came, possibly folded) carries a MAC that verifies for
  // `sender`; PERMISSION_DENIED when it carries none or a wrong one.
  absl::StatusOr<std::string> Verify(std::string_view value, std::string_view sender) const;

 private:
  explicit HoldMarkKey(std::string secret) : secret_(std::move(secret)) {}
  std::string Mac(std::string_view sender, std::string_view reason) const;

  std::string secret_;
};

// A reason as it may stand in the field: CR, LF and TAB become spaces, surrounding white
// space goes.
std::string HoldReasonText(std::string_view reason);
// The reason of an unsigned mark's value (unfolded, trimmed; a "; mac=..." tail dropped).
std::string UnsignedHoldReason(std::string_view value);

}  // namespace sluice::smtp
