// tests/services/filter-bridge/filter_test_support.h
//
// Small helpers shared by the filter tests: a finished spool from a string, a session and
// envelope, a FilterContext holding them, running a coroutine to completion on its own
// io_context, writing the final message to a string.
//
// Never: used by production code.
#pragma once

#include <chrono>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "asio/co_spawn.hpp"
#include "asio/io_context.hpp"
#include "services/filter-bridge/filters/filter.h"
#include "services/filter-bridge/message/message_edits.h"
#include "services/filter-bridge/message/message_spool.h"

namespace sluice::filter_bridge::testing {

inline std::unique_ptr<MessageSpool> MakeSpool(std::string_view content, uint64_t memory_limit = 1 << 20) {
  auto spool = std::make_unique<MessageSpool>(memory_limit, "");
  EXPECT_TRUE(spool->Append(content).ok());
  EXPECT_TRUE(spool->Finish().ok());
  return spool;
}

inline sluice::v1::SessionMetadata MakeSession(bool complete = true) {
  sluice::v1::SessionMetadata s;
  s.set_session_id("F1A2B3C4D5");
  s.set_client_address("192.0.2.10");
  s.set_client_port(40000);
  s.set_client_name("mail.client.example");
  s.set_helo("helo.client.example");
  s.set_protocol("ESMTPS");
  s.set_server_address("192.0.2.1");
  s.set_server_port(25);
  if (complete) {
    s.set_tls_version("TLSv1.3");
    s.set_tls_cipher("TLS_AES_256_GCM_SHA384");
    s.set_sasl_user("alice");
  }
  s.set_complete(complete);
  return s;
}

inline sluice::v1::Transaction MakeEnvelope(std::string from = "alice@example.com",
                                            std::vector<std::string> rcpts = {"bob@example.net"}) {
  sluice::v1::Transaction t;
  t.set_mail_from(std::move(from));
  auto* size = t.add_mail_parameters();
  size->set_keyword("SIZE");
  size->set_value("1234");
  for (auto& r : rcpts) t.add_recipients()->set_address(std::move(r));
  return t;
}

// Everything a FilterContext refers to, kept alive together.
struct ContextHolder {
  sluice::v1::SessionMetadata session = MakeSession();
  sluice::v1::Transaction envelope = MakeEnvelope();
  std::unique_ptr<MessageSpool> spool;
  Edits edits;
  SpoolOptions spool_options;
  std::string hostname = "filter.test.example";
  Clock::time_point deadline = Clock::now() + std::chrono::seconds(60);

  explicit ContextHolder(std::string_view message) : spool(MakeSpool(message)) {}
  FilterContext ctx() const {
    return FilterContext{session, envelope, *spool, edits, deadline, spool_options, hostname};
  }
};

// Runs an awaitable to completion on a fresh io_context and returns its value.
template <typename T>
T RunAwaitable(asio::awaitable<T> awaitable) {
  asio::io_context io;
  std::optional<T> result;
  std::exception_ptr error;
  asio::co_spawn(io, std::move(awaitable), [&](std::exception_ptr e, T value) {
    error = e;
    if (!e) result.emplace(std::move(value));
  });
  io.run();
  if (error) std::rethrow_exception(error);
  return std::move(*result);
}

inline std::string WriteToString(const MessageSpool& spool, const Edits& edits) {
  std::string out;
  absl::Status s = WriteMessage(spool, edits, [&](std::string_view c) {
    out.append(c);
    return absl::OkStatus();
  });
  EXPECT_TRUE(s.ok()) << s;
  return out;
}

// The decision's header edits applied to the spool's header, written out.
inline std::string ApplyDecision(const MessageSpool& spool, const FilterDecision& d) {
  Edits edits;
  edits.headers = d.header_edits;
  edits.body = d.new_body;
  return WriteToString(spool, edits);
}

}  // namespace sluice::filter_bridge::testing
