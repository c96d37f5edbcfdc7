// lib/control/hostname.cc -- see hostname.h.
#include "lib/control/hostname.h"

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <climits>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace sluice::control {

std::string DefaultHostname() {
  char buf[HOST_NAME_MAX + 1] = {0};
  if (::gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "localhost";
  std::string name(buf);
  if (name.find('.') != std::string::npos) return name;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_CANONNAME;
  addrinfo* result = nullptr;
  if (::getaddrinfo(name.c_str(), nullptr, &hints, &result) == 0 && result != nullptr) {
    if (result->ai_canonname != nullptr && std::strchr(result->ai_canonname, '.') != nullptr) {
      name = result->ai_canonname;
    }
    ::freeaddrinfo(result);
  }
  return name;
}

std::string DefaultSmtpListen(int standard_port, int unprivileged_port) {
  return absl::StrCat(":", ::geteuid() == 0 ? standard_port : unprivileged_port);
}

}  // namespace sluice::control
