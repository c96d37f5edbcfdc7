// tests/fuzz/fuzz_milter_response.cc
//
// The milter client's decoders on hostile bytes: whatever a milter sends as a framed packet
// or a response body is decoded or refused, never crashes; a framed packet never claims
// more bytes than it was given; a decoded response re-encodes to a packet that decodes to
// the same response.
//
// Never: calls anything with side effects.
#include <string>
#include <string_view>

#include "services/filter-bridge/filters/milter_codec.h"
#include "tests/fuzz/fuzz_check.h"

using namespace sluice::filter_bridge::milter;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  constexpr size_t kMax = 65536 + 64;

  Frame f = ParseFrame(in, kMax);
  if (f.status == FrameStatus::kComplete) {
    FUZZ_CHECK(f.consumed <= in.size());
    FUZZ_CHECK(f.consumed == 5 + f.data.size());
  }

  auto packet = DecodeResponsePacket(in, kMax);
  if (packet.ok()) {
    const std::string again = EncodeResponse(*packet);
    auto round = DecodeResponsePacket(again, kMax);
    FUZZ_CHECK(round.ok());
    FUZZ_CHECK(EncodeResponse(*round) == again);
  }

  if (!in.empty()) {
    // The same bytes as one command (code + body), as the test milter server reads them.
    (void)DecodeCommand(in[0], in.substr(1));
    (void)ParseReplyCode(in.substr(1));
  }
  return 0;
}
