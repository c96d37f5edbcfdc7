// lib/smtp/hold_mark.cc -- see hold_mark.h.
#include "lib/smtp/hold_mark.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <fstream>
#include <sstream>

namespace sluice::smtp {
namespace {

constexpr std::string_view kMacTag = "; mac=";
constexpr size_t kMinKeyBytes = 32;

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

// RFC 5322 unfolding: a CRLF followed by white space is removed.
std::string Unfold(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i] == '\r' && i + 1 < v.size() && v[i + 1] == '\n') {
      ++i;
      continue;
    }
    out.push_back(v[i]);
  }
  return out;
}

std::string Hex(const unsigned char* p, size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    out.push_back(kDigits[p[i] >> 4]);
    out.push_back(kDigits[p[i] & 0xf]);
  }
  return out;
}

}  // namespace

absl::StatusOr<HoldMarkKey> HoldMarkKey::Load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError("hold_mark_key_file: cannot read " + path);
  std::ostringstream s;
  s << in.rdbuf();
  auto key = FromSecret(s.str());
  if (!key.ok()) return absl::InvalidArgumentError("hold_mark_key_file " + path + ": " + std::string(key.status().message()));
  return key;
}

absl::StatusOr<HoldMarkKey> HoldMarkKey::FromSecret(std::string secret) {
  while (!secret.empty() && IsSpace(secret.back())) secret.pop_back();
  if (secret.size() < kMinKeyBytes) {
    return absl::InvalidArgumentError("a hold mark key needs at least 32 bytes (e.g. `openssl rand -hex 32`)");
  }
  return HoldMarkKey(std::move(secret));
}

std::string HoldMarkKey::Mac(std::string_view sender, std::string_view reason) const {
  std::string data = "sluice-hold-v1";
  data.push_back('\0');
  data.append(sender);
  data.push_back('\0');
  data.append(reason);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret_.data(), static_cast<int>(secret_.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), md, &len);
  return Hex(md, len);
}

std::string HoldMarkKey::Sign(std::string_view sender, std::string_view reason) const {
  const std::string text = HoldReasonText(reason);
  return text + std::string(kMacTag) + Mac(sender, text);
}

absl::StatusOr<std::string> HoldMarkKey::Verify(std::string_view value, std::string_view sender) const {
  const std::string unfolded = Unfold(value);
  std::string_view v = Trim(unfolded);
  const size_t tag = v.rfind(kMacTag);
  if (tag == std::string_view::npos) return absl::PermissionDeniedError("hold mark without a MAC");
  const std::string reason(Trim(v.substr(0, tag)));
  const std::string_view got = Trim(v.substr(tag + kMacTag.size()));
  const std::string want = Mac(sender, reason);
  if (got.size() != want.size() || CRYPTO_memcmp(got.data(), want.data(), want.size()) != 0) {
    return absl::PermissionDeniedError("hold mark MAC does not verify");
  }
  return reason;
}

std::string HoldReasonText(std::string_view reason) {
  std::string out(Trim(reason));
  for (char& c : out) {
    if (c == '\r' || c == '\n' || c == '\t') c = ' ';
  }
  return out;
}

std::string UnsignedHoldReason(std::string_view value) {
  const std::string unfolded = Unfold(value);
  std::string_view v = Trim(unfolded);
  const size_t tag = v.rfind(kMacTag);
  if (tag != std::string_view::npos) v = Trim(v.substr(0, tag));
  return HoldReasonText(v);
}

}  // namespace sluice::smtp
