// tools/sluicectl/run.h
//
// sluicectl from argument list to exit code: parse, print help or a usage error, load the
// token and TLS files, resolve the targets, run the command. main() is only this, so tests
// run the whole client in-process on any argument list.
//
// Never: calls exit(); writes results anywhere but `out` or diagnostics anywhere but `err`.
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace sluice::ctl {

// `args` excludes argv[0]. Returns the exit code (exit_codes.h).
int RunSluicectl(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace sluice::ctl
