// lib/smtp/dialogue_log.cc -- see dialogue_log.h.
#include "lib/smtp/dialogue_log.h"

#include "absl/strings/str_cat.h"
#include "lib/observe/log.h"

namespace sluice::smtp {

void LogDialogue(const DialogueClient& client, const DialogueLine& line) {
  observe::LogLine out(observe::Level::kInfo, line.event);
  out.Kv("queue_id", line.queue_id).Kv("command", line.command).Kv("client", client.name_addr);
  if (line.reply != nullptr) out.Kv("reply", line.reply->ToString());
  if (line.from) out.Kv("from", absl::StrCat("<", std::string(*line.from), ">"));
  if (!line.to.empty()) out.Kv("to", absl::StrCat("<", std::string(line.to), ">"));
  out.Kv("proto", client.proto);
  if (!client.helo.empty()) out.Kv("helo", absl::StrCat("<", client.helo, ">"));
  if (!line.note.check.empty()) out.Kv("check", line.note.check);
  if (!line.note.detail.empty()) out.Kv("detail", line.note.detail);
  if (!line.message_id.empty()) out.Kv("message_id", line.message_id);
  out.Kv("session", client.session_id);
}

std::string QueueIdFromReply(const Reply& reply) {
  constexpr std::string_view kQueuedAs = "queued as ";
  for (const std::string& text : reply.lines) {
    size_t at = text.find(kQueuedAs);
    if (at == std::string::npos) continue;
    size_t begin = at + kQueuedAs.size();
    size_t end = begin;
    while (end < text.size() && text[end] != ' ' && text[end] != ';' && text[end] != ')') ++end;
    if (end > begin) return text.substr(begin, end - begin);
  }
  return "";
}

}  // namespace sluice::smtp
