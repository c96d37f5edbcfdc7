// lib/redis/redis_value.h
//
// One Redis reply (RESP2) as a plain value the rest of sluice can hold after hiredis has
// freed its own reply object: nil, a string, a status ("OK"), an error ("NOSCRIPT ..."),
// an integer, or an array of values. FromHiredis copies one; the RESP parsing itself is
// hiredis's reader, which does no I/O (tests feed it bytes).
//
// Never: keeps a pointer into a hiredis reply; throws on a reply of an unexpected shape
// (the accessors return a status instead).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

struct redisReply;

namespace sluice::redis {

struct RedisValue {
  enum class Type { kNil, kString, kStatus, kError, kInteger, kArray };
  Type type = Type::kNil;
  std::string str;  // kString, kStatus, kError
  int64_t integer = 0;
  std::vector<RedisValue> elements;  // kArray

  bool is_error() const { return type == Type::kError; }
  // The integer of a kInteger (or of a kString holding one, as HGET returns counts).
  absl::StatusOr<int64_t> AsInteger() const;
  std::string DebugString() const;
};

RedisValue FromHiredis(const redisReply& reply);

// Parses one complete RESP2 reply from `bytes` with hiredis's reader (no I/O): for tests and
// fuzzing. INVALID_ARGUMENT for a protocol error, OUT_OF_RANGE when the bytes are incomplete.
absl::StatusOr<RedisValue> ParseReply(const std::string& bytes);

}  // namespace sluice::redis
