// tools/sluicectl/main.cc
//
// sluicectl, the operator's command-line client for the Admin and Queue services of every
// sluice stage and replica. See README.md and `sluicectl --help`.
//
// Never: does anything but hand argv to RunSluicectl and return its exit code.
#include <iostream>
#include <string>
#include <vector>

#include "tools/sluicectl/run.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  return sluice::ctl::RunSluicectl(args, std::cout, std::cerr);
}
