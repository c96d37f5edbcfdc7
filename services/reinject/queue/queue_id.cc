// services/reinject/queue/queue_id.cc -- see queue_id.h.
#include "services/reinject/queue/queue_id.h"

#include <sys/random.h>

#include <chrono>

namespace sluice::reinject {
namespace {

constexpr char kDigits[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

// `value` in base 36, left-padded with '0' to `width` characters (the low digits are kept
// when it does not fit, which only the suffix ever relies on).
std::string Base36(uint64_t value, size_t width) {
  std::string out(width, '0');
  for (size_t i = width; i > 0; --i) {
    out[i - 1] = kDigits[value % 36];
    value /= 36;
  }
  return out;
}

uint64_t RandomSuffix() {
  uint64_t value = 0;
  if (getrandom(&value, sizeof value, 0) != static_cast<ssize_t>(sizeof value)) {
    // No entropy source: fall back on time and address, still distinct per process start.
    value = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) ^
            reinterpret_cast<uintptr_t>(&value);
  }
  return value;
}

}  // namespace

QueueIdGenerator::QueueIdGenerator() : QueueIdGenerator(RandomSuffix()) {}

QueueIdGenerator::QueueIdGenerator(uint64_t suffix) : suffix_(Base36(suffix, 6)) {}

std::string QueueIdGenerator::Next() {
  auto now = std::chrono::system_clock::now().time_since_epoch();
  uint64_t micros = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(now).count());
  std::lock_guard<std::mutex> lock(mu_);
  if (micros <= last_micros_) micros = last_micros_ + 1;
  last_micros_ = micros;
  return Base36(micros, 10) + suffix_;
}

bool QueueIdGenerator::IsValid(std::string_view id) {
  if (id.empty() || id.size() > 32) return false;
  for (char c : id) {
    if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z'))) return false;
  }
  return true;
}

}  // namespace sluice::reinject
