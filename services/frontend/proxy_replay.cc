// services/frontend/proxy_replay.cc
//
// ProxySession's speed_adjust half (Postfix smtpd_proxy_options = speed_adjust): the content
// goes to an unlinked temporary file while the client sends it, and only then is the filter
// transaction started at the filter and replayed whole -- XFORWARD, MAIL, every RCPT, DATA,
// our Received: and the content. The client was told 250 for each recipient, so the
// transaction is all or nothing: a refused recipient aborts it before DATA and its refusal
// (a 4xx when any refusal was a 4xx, so the client retries all of them) is the client's
// end-of-DATA reply; otherwise the filter's final reply is.
//
// Never: sends the message to the filter for only some of the recipients the client was
// told we accepted; keeps the spool file past the transaction; answers the client 2xx
// unless the filter did.
#include "absl/strings/str_cat.h"
#include "lib/control/limits_store.h"
#include "lib/observe/log.h"
#include "services/frontend/proxy_session.h"

namespace sluice::frontend {
namespace {

constexpr size_t kReplayChunkBytes = 64 * 1024;

}  // namespace

void ProxySession::SpoolFailed(const absl::Status& st) {
  ctx_.metrics->ProxyFailure("spool");
  observe::Warn("spool_failed")
      .Kv("session", facts_.session_id)
      .Kv("client", facts_.client_address)
      .Kv("error", std::string(st.message()));
  NoteRefusal("spool", std::string(st.message()));
}

smtp::Reply ProxySession::StartSpool() {
  if (ctx_.spool_space != nullptr) {
    // Refused before the content fills the spool's emptyDir (eviction would cut every session).
    absl::Status room = ctx_.spool_space->Admit(
        t_->declared_size, limits_->spool_max_bytes(),
        smtp::SpoolMinFreeBytes(limits_->spool_min_free_bytes(), limits_->message_size_limit_bytes()));
    if (!room.ok()) {
      ctx_.metrics->LimitHit("spool_space");
      NoteRefusal("spool_space", std::string(room.message()));
      return smtp::replies::QueueFull();
    }
  }
  auto spool = SpoolFile::Create(ctx_.config.spool_dir(), ctx_.spool_space != nullptr ? &ctx_.spool_space->held() : nullptr);
  absl::Status st = spool.ok() ? spool->Append(ReceivedHeader()) : spool.status();
  if (!st.ok()) {
    SpoolFailed(st);
    return smtp::replies::QueueWriteError();
  }
  t_->spool = *std::move(spool);
  t_->in_data = true;
  update_metadata_([](sluice::v1::SessionMetadata& m) { m.set_state("data"); });
  return smtp::Reply{};  // "354"
}

absl::Status ProxySession::SpoolContent(std::string_view chunk) {
  if (!t_->spool.open()) return absl::FailedPreconditionError("no spool file");
  absl::Status st = t_->spool.Append(chunk);
  if (!st.ok()) {
    SpoolFailed(st);
    t_->spool = SpoolFile();
  }
  return st;
}

asio::awaitable<smtp::Reply> ProxySession::Replay() {
  if (!t_->spool.open()) co_return smtp::replies::ProxyError();
  // Every recipient; the first refusal decides, but a temporary one wins over a permanent
  // one (the client must then retry the whole message, nobody may be bounced for good).
  std::vector<smtp::Reply> replies;
  smtp::Reply failed = co_await OpenFilter(t_->rcpt_lines, replies);
  if (!failed.empty()) co_return failed;  // the filter's refusal of MAIL, or 451 4.3.0
  std::optional<smtp::Reply> refusal;
  for (const smtp::Reply& r : replies) {
    if (r.positive()) continue;
    if (!refusal || (r.transient() && !refusal->transient())) refusal = r;
  }
  if (refusal) {
    observe::Info("replay_refused")
        .Kv("session", facts_.session_id)
        .Kv("client", facts_.client_address)
        .Kv("reply", refusal->ToString());
    co_await ReleaseFilter(/*ended_with_final_reply=*/false);
    co_return *refusal;
  }

  auto data = co_await t_->filter->client->Command("DATA");
  if (!data.ok()) co_return ProxyFailed("data", data.status());
  if (data->code != 354) {
    if (data->transient() || data->permanent()) {
      co_await ReleaseFilter(/*ended_with_final_reply=*/false);
      co_return *data;
    }
    co_return Unexpected("data", *data);
  }
  std::string chunk;
  for (uint64_t offset = 0; offset < t_->spool.size(); offset += chunk.size()) {
    absl::Status st = t_->spool.ReadAt(offset, kReplayChunkBytes, chunk);
    if (st.ok() && chunk.empty()) st = absl::DataLossError("spool file shorter than written");
    if (!st.ok()) {
      SpoolFailed(st);
      DropFilter();  // never let the filter see an end of a partial message
      co_return smtp::replies::QueueWriteError();
    }
    st = co_await t_->filter->client->SendContent(chunk);
    if (!st.ok()) co_return ProxyFailed("content", st);
  }
  co_return co_await FinishAtFilter();
}

}  // namespace sluice::frontend
