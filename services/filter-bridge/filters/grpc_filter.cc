// services/filter-bridge/filters/grpc_filter.cc -- see grpc_filter.h.
#include "services/filter-bridge/filters/grpc_filter.h"

#include <fstream>
#include <sstream>

#include "asio/this_coro.hpp"
#include "lib/net/host_port.h"
#include "services/filter-bridge/filters/filter_replies.h"
#include "services/filter-bridge/filters/grpc_filter_call.h"

namespace sluice::filter_bridge {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path, std::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(std::string(what) + ": cannot read " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

absl::Status FromGrpc(const grpc::Status& s) {
  const std::string msg = "grpc filter: " + s.error_message();
  if (s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) return absl::DeadlineExceededError(msg);
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), msg);
}

class GrpcFilterFactory : public FilterFactory {
 public:
  std::string_view kind() const override { return "grpc"; }
  absl::StatusOr<std::unique_ptr<Filter>> Create(const sluice::v1::FilterConfig& config,
                                                 const FilterFactoryContext&) override {
    const sluice::v1::GrpcFilterConfig& gc = config.grpc();
    auto hp = net::ParseHostPort(gc.address());
    if (!hp.ok() || hp->host.empty() || hp->port == 0) {
      return absl::InvalidArgumentError("address \"" + gc.address() + "\": expected HOST:PORT");
    }
    size_t chunk = gc.chunk_bytes() == 0 ? 65536 : gc.chunk_bytes();
    if (chunk < 1024 || chunk > 4194304) {
      return absl::InvalidArgumentError("chunk_bytes must be within 1024..4194304");
    }
    std::shared_ptr<grpc::ChannelCredentials> creds;
    const sluice::v1::TlsConfig& tls = gc.tls();
    if (tls.ca_file().empty() && tls.cert_file().empty()) {
      creds = grpc::InsecureChannelCredentials();
    } else {
      grpc::SslCredentialsOptions options;
      if (!tls.ca_file().empty()) {
        auto ca = ReadFile(tls.ca_file(), "tls.ca_file");
        if (!ca.ok()) return ca.status();
        options.pem_root_certs = *ca;
      }
      if (!tls.cert_file().empty()) {
        auto cert = ReadFile(tls.cert_file(), "tls.cert_file");
        if (!cert.ok()) return cert.status();
        auto key = ReadFile(tls.key_file(), "tls.key_file");
        if (!key.ok()) return key.status();
        options.pem_cert_chain = *cert;
        options.pem_private_key = *key;
      }
      creds = grpc::SslCredentials(options);
    }
    grpc::ChannelArguments args;
    args.SetMaxSendMessageSize(static_cast<int>(chunk) + 65536);
    auto channel = grpc::CreateCustomChannel(gc.address(), creds, args);
    return std::unique_ptr<Filter>(new GrpcFilter(config.name(), std::move(channel), chunk));
  }
};

}  // namespace

GrpcFilter::GrpcFilter(std::string name, std::shared_ptr<grpc::Channel> channel, size_t chunk_bytes)
    : name_(std::move(name)),
      channel_(std::move(channel)),
      stub_(sluice::v1::ContentFilter::NewStub(channel_)),
      chunk_bytes_(chunk_bytes) {}

FilterOutcome GrpcFilter::DecisionFromVerdict(const sluice::v1::FilterVerdict& v) {
  using V = sluice::v1::FilterVerdict;
  FilterDecision d;
  d.detail = v.reason();
  switch (v.action()) {
    case V::ACTION_UNSPECIFIED:
    case V::ACCEPT:
      d.verdict = Verdict::kAccept;
      break;
    case V::REJECT:
      d.verdict = Verdict::kReject;
      d.reply = filter_replies::VerdictReply(v.smtp_code(), v.enhanced_code(), v.text(),
                                             smtp::replies::FilterReject());
      break;
    case V::TEMPFAIL:
      d.verdict = Verdict::kTempfail;
      d.reply = filter_replies::VerdictReply(v.smtp_code(), v.enhanced_code(), v.text(),
                                             smtp::replies::FilterTempfail());
      break;
    case V::DISCARD:
      d.verdict = Verdict::kDiscard;
      break;
    case V::HOLD:
      d.verdict = Verdict::kAccept;
      d.hold = true;
      d.hold_reason = !v.reason().empty() ? v.reason() : !v.text().empty() ? v.text() : "held by gRPC filter";
      break;
    default:
      return absl::DataLossError("grpc filter: unknown verdict action " + std::to_string(v.action()));
  }
  for (const sluice::v1::HeaderEdit& e : v.header_edits()) {
    if (!IsValidFieldName(e.name())) {
      return absl::DataLossError("grpc filter: header edit with invalid name \"" + e.name().substr(0, 80) + "\"");
    }
    switch (e.op()) {
      case sluice::v1::HeaderEdit::ADD:
        d.header_edits.push_back(HeaderEdit::Add(e.name(), e.value()));
        break;
      case sluice::v1::HeaderEdit::PREPEND:
        d.header_edits.push_back(HeaderEdit::Prepend(e.name(), e.value()));
        break;
      case sluice::v1::HeaderEdit::REPLACE:
        d.header_edits.push_back(HeaderEdit::ReplaceAll(e.name(), e.value()));
        break;
      case sluice::v1::HeaderEdit::REMOVE:
        d.header_edits.push_back(HeaderEdit::RemoveAll(e.name()));
        break;
      default:
        return absl::DataLossError("grpc filter: header edit without op for " + e.name());
    }
  }
  return d;
}

asio::awaitable<FilterOutcome> GrpcFilter::Run(const FilterContext& ctx) {
  // A cancelled run must still wait for gRPC to finish the call, so no throwing on cancel.
  co_await asio::this_coro::throw_if_cancelled(false);
  auto call = GrpcFilterCall::Start(stub_.get(), co_await asio::this_coro::executor, ctx.deadline);

  bool open = true;
  {
    sluice::v1::FilterRequest req;
    sluice::v1::FilterStart* start = req.mutable_start();
    *start->mutable_session() = ctx.session;
    *start->mutable_envelope() = ctx.envelope;
    start->set_size_bytes(ctx.MessageSize());
    open = co_await call->Write(std::move(req));
  }
  if (open) {
    for (const HeaderField& f : ctx.Headers()) {
      sluice::v1::FilterRequest req;
      req.mutable_header()->set_name(std::string(f.name()));
      req.mutable_header()->set_value(f.UnfoldedValue());
      if (!(open = co_await call->Write(std::move(req)))) break;
    }
  }
  absl::Status read_error;
  if (open) {
    const MessageSpool& body = ctx.BodySpool();
    SpoolReader reader(body, ctx.BodyBegin(), body.size());
    std::string chunk;
    while (reader.Next(chunk_bytes_, &chunk)) {
      sluice::v1::FilterRequest req;
      req.set_body_chunk(chunk);
      if (!co_await call->Write(std::move(req))) break;
    }
    read_error = reader.status();
  }
  grpc::Status status = co_await call->Finish();
  if (!read_error.ok()) co_return read_error;
  if (!status.ok()) co_return FromGrpc(status);
  co_return DecisionFromVerdict(call->verdict());
}

std::unique_ptr<FilterFactory> NewGrpcFilterFactory() {
  return std::make_unique<GrpcFilterFactory>();
}

}  // namespace sluice::filter_bridge
