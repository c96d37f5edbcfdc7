// lib/redis/redis_url.cc -- see redis_url.h.
#include "lib/redis/redis_url.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "lib/net/host_port.h"

namespace sluice::redis {
namespace {

constexpr absl::string_view kScheme = "redis://";

absl::Status Bad(std::string_view text, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("\"", std::string(text), "\": ", why, " (want redis://HOST:PORT[/DB])"));
}

}  // namespace

std::string RedisUrl::ToString() const {
  std::string h = host.find(':') != std::string::npos ? absl::StrCat("[", host, "]") : host;
  return absl::StrCat(kScheme, h, ":", port, "/", db);
}

absl::StatusOr<RedisUrl> ParseRedisUrl(std::string_view text) {
  if (text.substr(0, kScheme.size()) != std::string_view(kScheme.data(), kScheme.size())) return Bad(text, "not a redis:// URL");
  std::string_view rest = text.substr(kScheme.size());
  if (rest.find('@') != std::string_view::npos) return Bad(text, "credentials do not belong in the URL");
  RedisUrl url;
  size_t slash = rest.find('/');
  if (slash != std::string_view::npos) {
    std::string_view db = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
    if (!db.empty() && !absl::SimpleAtoi(absl::string_view(db.data(), db.size()), &url.db)) {
      return Bad(text, "the database is not a number");
    }
  }
  if (rest.empty()) return Bad(text, "no host");
  // A port is optional: "host", "[::1]" and "10.0.0.1" take 6379.
  bool has_port = rest.back() != ']' && rest.find(':') != std::string_view::npos &&
                  (rest.front() == '[' || rest.find(':') == rest.rfind(':'));
  if (!has_port) {
    if (rest.front() == '[') rest = rest.substr(1, rest.size() - 2);
    if (rest.find_first_of("[]") != std::string_view::npos) return Bad(text, "bad host");
    url.host = std::string(rest);
    return url;
  }
  auto hp = net::ParseHostPort(rest);
  if (!hp.ok()) return Bad(text, hp.status().message());
  if (hp->host.empty()) return Bad(text, "no host");
  if (hp->port == 0) return Bad(text, "port 0");
  url.host = hp->host;
  url.port = hp->port;
  return url;
}

}  // namespace sluice::redis
