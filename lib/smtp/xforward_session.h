// lib/smtp/xforward_session.h
//
// What a downstream stage does with XFORWARD (the after-filter side of XFORWARD_README):
// attributes accumulate over several commands (Postfix splits long sets), "[UNAVAILABLE]"
// and "[TEMPUNAVAIL]" mean unknown, and the known facts become the session record's
// original client -- with IDENT as the session id, so one client session is found under the
// same id at every stage.
//
// Never: lets an unknown value overwrite a known one in the record; trusts XFORWARD from a
// peer the server did not authorize (the server session checks that first).
#pragma once

#include <optional>
#include <string>

#include "lib/smtp/xforward.h"
#include "sluice/v1/session.pb.h"

namespace sluice::smtp {

// Sent, and neither empty nor one of the "unknown" markers.
bool XforwardKnown(const std::optional<std::string>& value);

// Attributes present in `from` replace those in `into`.
void MergeXforward(XforwardAttrs& into, const XforwardAttrs& from);

// The known attributes into the record: session_id (IDENT), client address/port/name, HELO,
// SOURCE, PROTO.
void ApplyXforward(const XforwardAttrs& attrs, sluice::v1::SessionMetadata& record);

}  // namespace sluice::smtp
