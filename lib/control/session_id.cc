// lib/control/session_id.cc -- see session_id.h.
#include "lib/control/session_id.h"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <random>

namespace sluice::control {
namespace {

constexpr char kAlphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";  // Crockford base32
constexpr int kTimeChars = 7;     // 35 bits of seconds: past the year 3000
constexpr int kCounterChars = 9;  // 45 bits
constexpr uint64_t kCounterMask = (uint64_t{1} << (5 * kCounterChars)) - 1;

std::atomic<uint64_t>& Counter() {
  static std::atomic<uint64_t> counter{[] {
    std::random_device rd;  // getrandom(2): distinct across replicas and restarts
    return (uint64_t{rd()} << 32 | rd()) & kCounterMask;
  }()};
  return counter;
}

void Append(std::string& out, uint64_t value, int chars) {
  for (int i = chars - 1; i >= 0; --i) out.push_back(kAlphabet[(value >> (5 * i)) & 31]);
}

}  // namespace

std::string NewSessionId() {
  uint64_t seconds = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::seconds>(
          std::chrono::system_clock::now().time_since_epoch())
          .count());
  uint64_t n = Counter().fetch_add(1, std::memory_order_relaxed) & kCounterMask;
  std::string id;
  id.reserve(kTimeChars + kCounterChars);
  Append(id, seconds, kTimeChars);
  Append(id, n, kCounterChars);
  return id;
}

bool IsSessionId(std::string_view id) {
  if (id.size() != kTimeChars + kCounterChars) return false;
  for (char c : id) {
    bool ok = false;
    for (const char* a = kAlphabet; *a != '\0'; ++a) ok = ok || *a == c;
    if (!ok) return false;
  }
  return true;
}

}  // namespace sluice::control
