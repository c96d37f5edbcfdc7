// lib/control/hostname.h
//
// The defaults a stage cannot take from the schema because they depend on the machine:
// its host name (Postfix myhostname: the fully-qualified name when the resolver knows it)
// and the SMTP port it may bind ("25, 2525 when not root", as DESIGN.md promises).
//
// Never: fails (a name is always returned: the short name, else "localhost"); blocks
// longer than one resolver lookup of the machine's own name.
#pragma once

#include <string>

namespace sluice::control {

// gethostname(), made fully qualified through the resolver (AI_CANONNAME) when it has no dot.
std::string DefaultHostname();

// ":PORT" (every address) with `standard_port` when running as root, else `unprivileged_port`.
std::string DefaultSmtpListen(int standard_port, int unprivileged_port);

}  // namespace sluice::control
