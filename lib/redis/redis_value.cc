// lib/redis/redis_value.cc -- see redis_value.h.
#include "lib/redis/redis_value.h"

#include <hiredis/hiredis.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace sluice::redis {

absl::StatusOr<int64_t> RedisValue::AsInteger() const {
  if (type == Type::kInteger) return integer;
  int64_t n = 0;
  if (type == Type::kString && absl::SimpleAtoi(str, &n)) return n;
  return absl::InternalError(absl::StrCat("redis: expected an integer, got ", DebugString()));
}

std::string RedisValue::DebugString() const {
  switch (type) {
    case Type::kNil: return "(nil)";
    case Type::kString: return absl::StrCat("\"", str, "\"");
    case Type::kStatus: return str;
    case Type::kError: return absl::StrCat("(error) ", str);
    case Type::kInteger: return absl::StrCat("(integer) ", integer);
    case Type::kArray: {
      std::vector<std::string> parts;
      for (const RedisValue& e : elements) parts.push_back(e.DebugString());
      return absl::StrCat("[", absl::StrJoin(parts, ", "), "]");
    }
  }
  return "?";
}

RedisValue FromHiredis(const redisReply& reply) {
  RedisValue v;
  switch (reply.type) {
    case REDIS_REPLY_STRING:
      v.type = RedisValue::Type::kString;
      v.str.assign(reply.str, reply.len);
      break;
    case REDIS_REPLY_STATUS:
      v.type = RedisValue::Type::kStatus;
      v.str.assign(reply.str, reply.len);
      break;
    case REDIS_REPLY_ERROR:
      v.type = RedisValue::Type::kError;
      v.str.assign(reply.str, reply.len);
      break;
    case REDIS_REPLY_INTEGER:
      v.type = RedisValue::Type::kInteger;
      v.integer = reply.integer;
      break;
    case REDIS_REPLY_ARRAY:
      v.type = RedisValue::Type::kArray;
      v.elements.reserve(reply.elements);
      for (size_t i = 0; i < reply.elements; ++i) v.elements.push_back(FromHiredis(*reply.element[i]));
      break;
    default:  // REDIS_REPLY_NIL
      break;
  }
  return v;
}

absl::StatusOr<RedisValue> ParseReply(const std::string& bytes) {
  redisReader* reader = redisReaderCreate();
  if (reader == nullptr) return absl::ResourceExhaustedError("redis: no memory for a reader");
  void* reply = nullptr;
  absl::StatusOr<RedisValue> out = absl::OutOfRangeError("redis: incomplete reply");
  if (redisReaderFeed(reader, bytes.data(), bytes.size()) != REDIS_OK ||
      redisReaderGetReply(reader, &reply) != REDIS_OK) {
    out = absl::InvalidArgumentError(absl::StrCat("redis: protocol error: ", reader->errstr));
  } else if (reply != nullptr) {
    out = FromHiredis(*static_cast<redisReply*>(reply));
    freeReplyObject(reply);
  }
  redisReaderFree(reader);
  return out;
}

}  // namespace sluice::redis
