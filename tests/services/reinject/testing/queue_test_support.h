// tests/services/reinject/testing/queue_test_support.h
//
// What the reinject queue and delivery tests share: a temporary directory removed after the
// test, running a coroutine to completion on an io_context, committing a message in one
// call, and small file helpers.
//
// Never: used by production code; sleeps to wait for something (RunUntil polls the
// io_context with a generous bound and reports the failure).
#pragma once

#include <dirent.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "asio/co_spawn.hpp"
#include "asio/io_context.hpp"
#include "asio/use_awaitable.hpp"
#include "services/reinject/queue/queue_store.h"

namespace sluice::reinject::testing {

class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TEST_TMPDIR");
    std::string tmpl = std::string(base != nullptr ? base : "/tmp") + "/sluice-queue-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    char* made = ::mkdtemp(buf.data());
    if (made == nullptr) ADD_FAILURE() << "mkdtemp failed";
    path_ = made != nullptr ? made : "/tmp";
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& rel) const { return path_ + "/" + rel; }

 private:
  std::string path_;
};

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
}

inline bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

// File names in a directory, sorted.
inline std::vector<std::string> ListDir(const std::string& path) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(path, ec)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// Runs `aw` on `io` (on this thread) until it completes; returns its value.
template <typename T>
T RunAwaitable(asio::io_context& io, asio::awaitable<T> aw) {
  std::optional<T> result;
  std::exception_ptr error;
  asio::co_spawn(io, std::move(aw), [&](std::exception_ptr e, T value) {
    error = e;
    if (!e) result.emplace(std::move(value));
  });
  io.restart();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!result && !error && std::chrono::steady_clock::now() < deadline) {
    io.run_for(std::chrono::milliseconds(5));
    if (io.stopped()) io.restart();
  }
  if (error) std::rethrow_exception(error);
  if (!result) throw std::runtime_error("RunAwaitable: no completion within 60 s");
  return std::move(*result);
}

// Polls `io` until `done()` holds (true) or 60 s pass (false).
inline bool RunUntil(asio::io_context& io, const std::function<bool()>& done) {
  io.restart();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    io.run_for(std::chrono::milliseconds(2));
    if (io.stopped()) io.restart();
  }
  return true;
}

inline sluice::v1::QueueRecord Envelope(const std::string& sender, const std::vector<std::string>& recipients) {
  sluice::v1::QueueRecord r;
  r.set_sender(sender);
  for (const auto& a : recipients) r.add_recipients()->set_address(a);
  r.set_session_id("S1");
  return r;
}

inline asio::awaitable<absl::StatusOr<std::string>> CommitAsync(QueueStore& store, std::string content,
                                                                sluice::v1::QueueRecord record) {
  auto writer = store.Begin();
  if (!writer.ok()) co_return writer.status();
  absl::Status s = (*writer)->Append(content);
  if (!s.ok()) co_return s;
  co_return co_await (*writer)->Commit(std::move(record));
}

inline absl::StatusOr<std::string> Commit(asio::io_context& io, QueueStore& store, const std::string& content,
                                          sluice::v1::QueueRecord record) {
  return RunAwaitable(io, CommitAsync(store, content, std::move(record)));
}

inline const char* kMessage =
    "Received: from filter (localhost [127.0.0.1])\r\n"
    "From: Alice <alice@example.org>\r\n"
    "To: bob@example.com\r\n"
    "Subject: hello\r\n"
    "Message-ID: <m1@example.org>\r\n"
    "\r\n"
    "Body line one.\r\n"
    "Body line two.\r\n";

}  // namespace sluice::reinject::testing
