// bench/smtp_load.cc
//
// sluice-bench-load: the benchmark's own SMTP load client. It speaks what Postfix's
// smtp-source speaks by default -- a new connection per message; greeting, HELO, MAIL,
// RCPT, DATA, a From/To/Date/Message-Id header, LENGTH bytes of 80-byte lines ("0XXX…"),
// ".", QUIT, each command waiting for its reply -- and adds what smtp-source does not give:
// the time of every message from the start of connect() to the server's reply to ".".
// One thread, one straight-line coroutine per session, so its own cost stays small next to
// a pipeline's; it reports the CPU it used so the bench can show it was not the bottleneck.
//
//   sluice-bench-load -s SESSIONS -m MESSAGES -l LENGTH [-f FROM] [-t TO] [-M HELO] ADDR:PORT
//
// Prints one line of key=value pairs: sent failed wall_s msgs_per_s p50_ms p99_ms mean_ms
// max_ms client_cpu_s. Exits 1 when a message failed (the first errors go to stderr).
//
// Never: pipelines commands (smtp-source does not, and both pipelines must see the same
// client); retries a failed message; connects anywhere but the address it was given.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

#include "asio/co_spawn.hpp"
#include "asio/detached.hpp"
#include "asio/io_context.hpp"
#include "asio/ip/tcp.hpp"
#include "asio/read_until.hpp"
#include "asio/redirect_error.hpp"
#include "asio/use_awaitable.hpp"
#include "asio/write.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using asio::ip::tcp;

struct LoadOptions {
  int sessions = 1;
  int messages = 1;
  int length = 0;
  std::string from = "a@example.com";
  std::string to = "b@example.com";
  std::string helo = "client.example.test";
  tcp::endpoint target;
};

// What every session shares (one thread: no locks).
struct LoadState {
  const LoadOptions& options;
  std::string body;  // LENGTH bytes laid out as smtp-source does, CRLF and "." appended
  std::string date;
  int started = 0;
  int failed = 0;
  std::vector<double> latency_ms;
};

// smtp-source's payload: LENGTH bytes of 'X'; every 80 bytes a line that starts with a digit
// and ends in CRLF; then the CRLF its smtp_fputs() adds, then the final ".".
std::string PayloadOf(int length) {
  std::string data(static_cast<size_t>(length), 'X');
  for (int i = 80; i < length; i += 80) {
    data[static_cast<size_t>(i - 80)] = "0123456789"[(i / 80) % 10];
    data[static_cast<size_t>(i - 2)] = '\r';
    data[static_cast<size_t>(i - 1)] = '\n';
  }
  data += "\r\n.\r\n";
  return data;
}

std::string RfcDate() {
  char out[64];
  std::time_t now = std::time(nullptr);
  std::tm tm_now;
  gmtime_r(&now, &tm_now);
  std::strftime(out, sizeof out, "%a, %d %b %Y %H:%M:%S +0000 (UTC)", &tm_now);
  return out;
}

// Reads one (possibly multi-line) reply; returns its code, or 0 when the connection failed.
asio::awaitable<int> ReadReply(tcp::socket& socket, std::string& buffer) {
  for (;;) {
    std::error_code ec;
    size_t n = co_await asio::async_read_until(socket, asio::dynamic_buffer(buffer), "\r\n",
                                               asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return 0;
    std::string line = buffer.substr(0, n);
    buffer.erase(0, n);
    if (line.size() < 5) co_return 0;
    if (line[3] == '-') continue;
    co_return std::atoi(line.substr(0, 3).c_str());
  }
}

// Sends `command` and returns the code of its reply (0 on a broken connection).
asio::awaitable<int> Exchange(tcp::socket& socket, std::string& buffer, std::string_view command) {
  std::error_code ec;
  co_await asio::async_write(socket, asio::buffer(command), asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return 0;
  int code = co_await ReadReply(socket, buffer);
  co_return code;
}

void Fail(LoadState& state, int message, std::string_view step, int code) {
  ++state.failed;
  if (state.failed <= 5) std::fprintf(stderr, "message %d failed at %.*s (reply %d)\n", message,
                                      static_cast<int>(step.size()), step.data(), code);
}

// One message on a new connection; records its latency when the final reply is 250.
// (Every command string is built in its own statement: g++ 12 mishandles temporaries with
// non-trivial destructors inside a co_await expression.)
asio::awaitable<void> SendOne(LoadState& state, int session, int message) {
  const LoadOptions& o = state.options;
  auto executor = co_await asio::this_coro::executor;
  tcp::socket socket(executor);
  std::string buffer;
  Clock::time_point start = Clock::now();
  std::error_code ec;
  co_await socket.async_connect(o.target, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    Fail(state, message, "connect", 0);
    co_return;
  }
  socket.set_option(tcp::no_delay(true));
  int code = co_await ReadReply(socket, buffer);
  if (code != 220) {
    Fail(state, message, "greeting", code);
    co_return;
  }
  char message_id[128];
  std::snprintf(message_id, sizeof message_id, "<%04x.%04x.%04x@%s>", static_cast<unsigned>(getpid()),
                static_cast<unsigned>(session), static_cast<unsigned>(message), o.helo.c_str());
  std::string content = "From: <" + o.from + ">\r\nTo: <" + o.to + ">\r\nDate: " + state.date +
                        "\r\nMessage-Id: " + message_id + "\r\n\r\n";
  content += state.body;
  const std::string steps[][2] = {{"HELO", "HELO " + o.helo + "\r\n"},
                                  {"MAIL", "MAIL FROM:<" + o.from + ">\r\n"},
                                  {"RCPT", "RCPT TO:<" + o.to + ">\r\n"},
                                  {"DATA", "DATA\r\n"},
                                  {"end of data", content}};
  for (const auto& step : steps) {
    code = co_await Exchange(socket, buffer, step[1]);
    bool ok = step[0] == "DATA" ? code == 354 : code == 250;
    if (!ok) {
      Fail(state, message, step[0], code);
      co_return;
    }
  }
  double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  state.latency_ms.push_back(ms);
  code = co_await Exchange(socket, buffer, "QUIT\r\n");
  (void)code;  // the message is in; a lost 221 changes nothing
}

asio::awaitable<void> RunSession(LoadState& state, int session) {
  while (state.started < state.options.messages) {
    int message = state.started++;
    co_await SendOne(state, session, message);
  }
}

double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  size_t rank = static_cast<size_t>(p / 100.0 * static_cast<double>(sorted.size()) + 0.999999);
  rank = std::clamp<size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];  // nearest rank
}

double CpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

bool ParseTarget(std::string_view text, tcp::endpoint& out) {
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) return false;
  std::error_code ec;
  asio::ip::address address = asio::ip::make_address(std::string(text.substr(0, colon)), ec);
  int port = std::atoi(std::string(text.substr(colon + 1)).c_str());
  if (ec || port <= 0 || port > 65535) return false;
  out = tcp::endpoint(address, static_cast<unsigned short>(port));
  return true;
}

int Usage() {
  std::fprintf(stderr, "usage: sluice-bench-load -s SESSIONS -m MESSAGES -l LENGTH [-f FROM] [-t TO] "
                       "[-M HELO] ADDR:PORT\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  LoadOptions options;
  int opt;
  while ((opt = getopt(argc, argv, "s:m:l:f:t:M:")) != -1) {
    switch (opt) {
      case 's': options.sessions = std::atoi(optarg); break;
      case 'm': options.messages = std::atoi(optarg); break;
      case 'l': options.length = std::atoi(optarg); break;
      case 'f': options.from = optarg; break;
      case 't': options.to = optarg; break;
      case 'M': options.helo = optarg; break;
      default: return Usage();
    }
  }
  if (optind != argc - 1 || options.sessions < 1 || options.messages < 1 || options.length < 0 ||
      !ParseTarget(argv[optind], options.target)) {
    return Usage();
  }

  LoadState state{options, PayloadOf(options.length), RfcDate(), 0, 0, {}};
  state.latency_ms.reserve(static_cast<size_t>(options.messages));
  asio::io_context io(1);
  for (int s = 0; s < std::min(options.sessions, options.messages); ++s) {
    asio::co_spawn(io, RunSession(state, s), asio::detached);
  }
  double cpu0 = CpuSeconds();
  Clock::time_point t0 = Clock::now();
  io.run();
  double wall = std::chrono::duration<double>(Clock::now() - t0).count();
  double cpu = CpuSeconds() - cpu0;

  std::vector<double> sorted = state.latency_ms;
  std::sort(sorted.begin(), sorted.end());
  double sum = 0;
  for (double v : sorted) sum += v;
  size_t sent = sorted.size();
  std::printf("sent=%zu failed=%d wall_s=%.3f msgs_per_s=%.1f p50_ms=%.3f p99_ms=%.3f mean_ms=%.3f "
              "max_ms=%.3f client_cpu_s=%.3f\n",
              sent, state.failed, wall, sent > 0 ? static_cast<double>(sent) / wall : 0.0, Percentile(sorted, 50),
              Percentile(sorted, 99), sent > 0 ? sum / static_cast<double>(sent) : 0.0,
              sorted.empty() ? 0.0 : sorted.back(), cpu);
  return state.failed == 0 ? 0 : 1;
}
