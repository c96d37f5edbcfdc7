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
#include <sys/mount.h>

#include "services/reinject/queue/queue_frame.h"
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

// The content of a live entry, read through the store.
inline std::string ContentOf(const QueueStore& store, const std::string& id) {
  auto content = store.Content(id);
  if (!content.ok()) return "<" + std::string(content.status().message()) + ">";
  auto bytes = content->ReadAll();
  return bytes.ok() ? *bytes : "<" + std::string(bytes.status().message()) + ">";
}

// A file as message content (agents and report writers under test).
inline MessageContent ContentFile(const std::string& path) {
  auto c = MessageContent::OpenFile(path);
  if (!c.ok()) ADD_FAILURE() << c.status().message();
  return c.ok() ? *std::move(c) : MessageContent();
}

// What the segment files under QUEUE_DIR/segments say of `id` now, read straight from the
// files (the last frame of the id wins): its record, or NOT_FOUND when it has none or its
// last frame removes it. Independent of the store's memory: proves what is on disk.
inline absl::StatusOr<sluice::v1::QueueRecord> RecordInLog(const std::string& queue_dir, const std::string& id) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(queue_dir + "/segments", ec)) {
    names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  absl::StatusOr<sluice::v1::QueueRecord> last = absl::NotFoundError("no frame of " + id);
  for (const auto& name : names) {
    std::ifstream in(queue_dir + "/segments/" + name, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    std::string bytes = ss.str();
    size_t pos = 0;
    while (pos < bytes.size()) {
      auto frame = ParseFrame(std::string_view(bytes).substr(pos));
      if (!frame.ok()) {
        pos = FindNextFrame(bytes, pos + 1);
        if (pos == std::string::npos) break;
        continue;
      }
      if (frame->id == id) {
        if (frame->type == FrameType::kRemove) {
          last = absl::NotFoundError("removed");
        } else {
          auto payload = DecodeRecordPayload(frame->payload);
          if (payload.ok()) {
            last = payload->log.record();
          } else {
            last = payload.status();
          }
        }
      }
      pos += frame->size;
    }
  }
  return last;
}

// A small file system of its own (tmpfs, mounted by the test: root) to run out of space in.
class SmallDisk {
 public:
  SmallDisk(const std::string& path, size_t bytes) : path_(path) {
    std::filesystem::create_directories(path_);
    mounted_ = ::mount("tmpfs", path_.c_str(), "tmpfs", 0, ("size=" + std::to_string(bytes)).c_str()) == 0;
  }
  ~SmallDisk() {
    if (mounted_) ::umount2(path_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  // Takes all the space that is left (a filler file), or gives it back.
  void Fill() {
    std::ofstream out(path_ + "/filler", std::ios::binary);
    std::string block(4096, 'f');
    while (out.write(block.data(), static_cast<std::streamsize>(block.size()))) {
    }
  }
  void Free() { std::filesystem::remove(path_ + "/filler"); }

 private:
  std::string path_;
  bool mounted_ = false;
};

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
