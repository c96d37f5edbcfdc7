// tests/services/filter-bridge/sample_grpc_filter.cc -- see sample_grpc_filter.h.
#include "tests/services/filter-bridge/sample_grpc_filter.h"

#include <chrono>
#include <thread>

namespace sluice::filter_bridge::testing {

grpc::Status SampleContentFilter::Filter(grpc::ServerContext* context,
                                         grpc::ServerReader<sluice::v1::FilterRequest>* reader,
                                         sluice::v1::FilterVerdict* verdict) {
  ++calls_;
  Seen seen;
  seen.deadline_set = context->deadline() < std::chrono::system_clock::now() + std::chrono::hours(1);
  std::string subject;
  sluice::v1::FilterRequest req;
  while (reader->Read(&req)) {
    switch (req.part_case()) {
      case sluice::v1::FilterRequest::kStart:
        seen.start = req.start();
        break;
      case sluice::v1::FilterRequest::kHeader:
        seen.headers.emplace_back(req.header().name(), req.header().value());
        if (req.header().name() == "Subject") subject = req.header().value();
        break;
      case sluice::v1::FilterRequest::kBodyChunk:
        seen.body += req.body_chunk();
        break;
      default:
        break;
    }
    if (subject.find("early") != std::string::npos) break;
  }
  auto has = [&](const char* word) { return subject.find(word) != std::string::npos; };
  if (has("slow")) {
    // Wait for the client to give up (its deadline or a cancel); answering at our own view of
    // the deadline would race the client's.
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!context->IsCancelled() && std::chrono::steady_clock::now() < give_up) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    seen.cancelled = context->IsCancelled();
    std::lock_guard<std::mutex> lock(mu_);
    last_ = std::move(seen);
    return grpc::Status(grpc::StatusCode::CANCELLED, "the client gave up");
  }
  if (has("reject-me")) {
    verdict->set_action(sluice::v1::FilterVerdict::REJECT);
    verdict->set_smtp_code(554);
    verdict->set_enhanced_code("5.7.1");
    verdict->set_text("sample says no");
    verdict->set_reason("subject asked for it");
  } else if (has("tempfail-me")) {
    verdict->set_action(sluice::v1::FilterVerdict::TEMPFAIL);
  } else if (has("hold-me")) {
    verdict->set_action(sluice::v1::FilterVerdict::HOLD);
    verdict->set_reason("sample hold");
  } else {
    verdict->set_action(sluice::v1::FilterVerdict::ACCEPT);
    if (!has("early")) {
      auto* top = verdict->add_header_edits();
      top->set_op(sluice::v1::HeaderEdit::PREPEND);
      top->set_name("X-Sample-Top");
      top->set_value("first");
      auto* add = verdict->add_header_edits();
      add->set_op(sluice::v1::HeaderEdit::ADD);
      add->set_name("X-Sample-Filter");
      add->set_value("headers=" + std::to_string(seen.headers.size()) +
                     " body=" + std::to_string(seen.body.size()) +
                     " size=" + std::to_string(seen.start.size_bytes()));
      auto* remove = verdict->add_header_edits();
      remove->set_op(sluice::v1::HeaderEdit::REMOVE);
      remove->set_name("X-Remove-Me");
    }
    verdict->set_reason("clean");
  }
  std::lock_guard<std::mutex> lock(mu_);
  last_ = std::move(seen);
  return grpc::Status::OK;
}

SampleContentFilter::Seen SampleContentFilter::last() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_;
}

SampleFilterServer::SampleFilterServer() {
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
  builder.RegisterService(&service_);
  server_ = builder.BuildAndStart();
}

SampleFilterServer::~SampleFilterServer() {
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
}

}  // namespace sluice::filter_bridge::testing
