// lib/smtp/client_session.cc -- see client_session.h.
#include "lib/smtp/client_session.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "asio/ip/tcp.hpp"
#include "asio/steady_timer.hpp"
#include "asio/use_awaitable.hpp"
#include "lib/net/tcp_connect.h"
#include "lib/smtp/reply_parser.h"

namespace sluice::smtp {
namespace {

constexpr size_t kReadChunk = 16 * 1024;
constexpr size_t kMaxReplyLine = 4096;  // RFC 5321 §4.5.3.1.5: 512; be generous, but bounded
constexpr size_t kContentFlushBytes = 64 * 1024;

}  // namespace

SmtpClient::SmtpClient(asio::any_io_executor executor, ClientTimeouts timeouts)
    : executor_(std::move(executor)), timeouts_(timeouts) {}

SmtpClient::~SmtpClient() { Close(); }

absl::Status SmtpClient::Broken(absl::Status st) {
  broken_ = true;
  return st;
}

void SmtpClient::Close() {
  if (stream_) stream_->Close();
  broken_ = true;
}

asio::awaitable<absl::StatusOr<Reply>> SmtpClient::Connect(const net::HostPort& target) {
  peer_ = target.ToString();
  auto socket = co_await net::ConnectTcp(executor_, target, timeouts_.connect);
  if (!socket.ok()) co_return Broken(socket.status());
  stream_ = std::make_unique<SmtpStream>(*std::move(socket));
  broken_ = false;
  co_return co_await ReadReply(timeouts_.reply);
}

asio::awaitable<absl::Status> SmtpClient::Write(std::string_view data, Duration timeout) {
  if (!connected()) co_return absl::UnavailableError("not connected");
  std::error_code ec = co_await stream_->WriteAll(data, timeout);
  if (ec == asio::error::timed_out) co_return Broken(absl::DeadlineExceededError(absl::StrCat("writing to ", peer_, ": timeout")));
  if (ec) co_return Broken(absl::UnavailableError(absl::StrCat("writing to ", peer_, ": ", ec.message())));
  co_return absl::OkStatus();
}

asio::awaitable<absl::StatusOr<Reply>> SmtpClient::ReadReply(Duration timeout) {
  if (!connected()) co_return absl::UnavailableError("not connected");
  for (;;) {
    Reply reply;
    ReplyParseResult r = ParseReply(in_, reply, kMaxReplyLine);
    if (r.status == ReplyStatus::kComplete) {
      in_.erase(0, r.consumed);
      co_return reply;
    }
    if (r.status == ReplyStatus::kError) {
      co_return Broken(absl::InternalError(absl::StrCat("bad reply from ", peer_, ": ", std::string(r.error.message()))));
    }
    // A reply is expected soon: a busy read (one system call, see stream.h).
    std::error_code ec = co_await stream_->ReadInto(in_, kReadChunk, timeout, SmtpStream::Wait::kBusy);
    if (ec == asio::error::timed_out) co_return Broken(absl::DeadlineExceededError(absl::StrCat("waiting for ", peer_, ": timeout")));
    if (ec) co_return Broken(absl::UnavailableError(absl::StrCat("reading from ", peer_, ": ", ec == asio::error::eof ? std::string("connection closed") : ec.message())));
  }
}

asio::awaitable<absl::StatusOr<Reply>> SmtpClient::Command(std::string_view line) {
  out_.assign(line.data(), line.size());
  out_.append("\r\n");
  absl::Status st = co_await Write(out_, timeouts_.reply);
  out_.clear();
  if (!st.ok()) co_return st;
  co_return co_await ReadReply(timeouts_.reply);
}

asio::awaitable<absl::StatusOr<Reply>> SmtpClient::Hello(std::string_view name, bool lmtp) {
  auto r = co_await Command(absl::StrCat(lmtp ? "LHLO " : "EHLO ", absl::string_view(name.data(), name.size())));
  if (r.ok() && r->code == 250) caps_ = ParseCapabilities(*r);
  co_return r;
}

asio::awaitable<absl::StatusOr<Reply>> SmtpClient::Helo(std::string_view name) {
  caps_ = Capabilities{};
  co_return co_await Command(absl::StrCat("HELO ", absl::string_view(name.data(), name.size())));
}

asio::awaitable<absl::StatusOr<Reply>> SmtpClient::StartTls(asio::ssl::context& ctx, const std::string& sni) {
  auto r = co_await Command("STARTTLS");
  if (!r.ok() || r->code != 220) co_return r;
  in_.clear();  // nothing the server sent in the clear counts inside TLS
  std::error_code ec = co_await stream_->StartTlsClient(ctx, sni, timeouts_.reply);
  if (ec) co_return Broken(absl::UnavailableError(absl::StrCat("TLS handshake with ", peer_, ": ", ec.message())));
  caps_ = Capabilities{};
  co_return r;
}

asio::awaitable<absl::StatusOr<Reply>> SmtpClient::Xforward(const XforwardAttrs& attrs) {
  Reply last;
  for (const std::string& line : EncodeXforward(attrs, caps_.xforward_attrs)) {
    auto r = co_await Command(line);
    if (!r.ok()) co_return r;
    if (r->code != 250) co_return r;
    last = *r;
  }
  co_return last;
}

void SmtpClient::Queue(std::string_view line) {
  out_.append(line.data(), line.size());
  out_.append("\r\n");
}

asio::awaitable<absl::Status> SmtpClient::SendQueued() {
  absl::Status st = co_await Write(out_, timeouts_.reply);
  out_.clear();
  co_return st;
}

asio::awaitable<absl::Status> SmtpClient::SendContent(std::string_view content) {
  stuffer_.Feed(content, out_);
  if (out_.size() < kContentFlushBytes) co_return absl::OkStatus();
  absl::Status st = co_await Write(out_, timeouts_.reply);
  out_.clear();
  co_return st;
}

asio::awaitable<absl::StatusOr<Reply>> SmtpClient::FinishContent() {
  stuffer_.Finish(out_);
  stuffer_.Reset();
  absl::Status st = co_await Write(out_, timeouts_.reply);
  out_.clear();
  if (!st.ok()) co_return st;
  co_return co_await ReadReply(timeouts_.data_done);
}

asio::awaitable<absl::StatusOr<std::vector<Reply>>> SmtpClient::FinishContentLmtp(size_t recipients) {
  stuffer_.Finish(out_);
  stuffer_.Reset();
  absl::Status st = co_await Write(out_, timeouts_.reply);
  out_.clear();
  if (!st.ok()) co_return st;
  std::vector<Reply> replies;
  for (size_t i = 0; i < recipients; ++i) {
    auto r = co_await ReadReply(timeouts_.data_done);
    if (!r.ok()) co_return r.status();
    replies.push_back(*std::move(r));
  }
  co_return replies;
}

asio::awaitable<void> SmtpClient::Quit(bool wait_reply) {
  if (connected()) {
    out_.assign("QUIT\r\n");
    absl::Status st = co_await Write(out_, std::chrono::seconds(10));
    out_.clear();
    if (st.ok() && wait_reply) (void)co_await ReadReply(std::chrono::seconds(10));
  }
  Close();
  stream_.reset();
}

}  // namespace sluice::smtp
