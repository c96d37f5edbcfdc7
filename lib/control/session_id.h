// lib/control/session_id.h
//
// The session id the frontend gives every client session, the key under which every stage
// lists the session and which travels downstream as XFORWARD IDENT: 16 characters of
// Crockford base32 (0-9, A-Z without I L O U), 7 for the time in seconds (so ids sort by
// start time, like Postfix long queue ids) and 9 (45 bits) for a per-process counter that
// starts at a random value.
//
// Never: repeats within a process; needs coordination between replicas (a clash across
// replicas needs two processes in the same second with overlapping counter windows in a
// 2^45 space); contains a character that xtext (RFC 1891) or logfmt would escape.
#pragma once

#include <string>
#include <string_view>

namespace sluice::control {

std::string NewSessionId();

// True for ids NewSessionId could have made (16 Crockford base32 characters).
bool IsSessionId(std::string_view id);

}  // namespace sluice::control
