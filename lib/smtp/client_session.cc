// lib/smtp/client_session.cc -- see client_session.h.
#include "lib/smtp/client_session.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "asio/connect.hpp"
#include "asio/experimental/as_tuple.hpp"
#include "asio/experimental/awaitable_operators.hpp"
#include "asio/ip/tcp.hpp"
#include "asio/steady_timer.hpp"
#include "asio/use_awaitable.hpp"
#include "lib/smtp/reply_parser.h"

namespace sluice::smtp {
namespace {

constexpr auto kNothrow = asio::experimental::as_tuple(asio::use_awaitable);
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
}

asio::awaitable<absl::StatusOr<Reply>> SmtpClient::Connect(const net::HostPort& target) {
  using namespace asio::experimental::awaitable_operators;
  asio::steady_timer timer(executor_);
  timer.expires_after(timeouts_.connect);
  peer_ = target.ToString();
  // An address needs no resolver; a name is resolved with a numeric service, so neither
  // costs a parse of /etc/services per connection (it showed in profiles).
  std::vector<asio::ip::tcp::endpoint> endpoints;
  std::error_code aec;
  asio::ip::address literal = asio::ip::make_address(target.host, aec);
  if (!aec) {
    endpoints.emplace_back(literal, target.port);
  } else {
    asio::ip::tcp::resolver resolver(executor_);
    auto resolved = co_await (resolver.async_resolve(target.host, std::to_string(target.port),
                                                     asio::ip::resolver_base::numeric_service, kNothrow) ||
                              timer.async_wait(kNothrow));
    if (resolved.index() == 1) co_return Broken(absl::DeadlineExceededError(absl::StrCat("resolving ", peer_, ": timeout")));
    auto [rec, results] = std::get<0>(resolved);
    if (rec) co_return Broken(absl::UnavailableError(absl::StrCat("resolving ", peer_, ": ", rec.message())));
    for (const auto& entry : results) endpoints.push_back(entry.endpoint());
  }

  asio::ip::tcp::socket socket(executor_);
  auto connected = co_await (asio::async_connect(socket, endpoints, kNothrow) || timer.async_wait(kNothrow));
  if (connected.index() == 1) co_return Broken(absl::DeadlineExceededError(absl::StrCat("connecting to ", peer_, ": timeout")));
  auto [cec, endpoint] = std::get<0>(connected);
  if (cec) co_return Broken(absl::UnavailableError(absl::StrCat("connecting to ", peer_, ": ", cec.message())));
  stream_ = std::make_unique<SmtpStream>(std::move(socket));
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
    std::error_code ec = co_await stream_->ReadInto(in_, kReadChunk, timeout);
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
