// tests/fuzz/fuzz_data_reader.cc
//
// DataReader on arbitrary DATA content. Invariants: feeding in random chunk splits (and byte
// by byte) gives exactly what one-shot feeding gives; the message ends exactly at the first
// CRLF.CRLF (or at ".CRLF" as the first bytes) and nowhere else; the bare CR/LF flags match
// the bytes consumed. And DotStuffer -> DataReader is the identity for content whose line
// ends are all CRLF (plus the CRLF that ends an unterminated last line).
//
// Never: calls anything with side effects.
#include <string>
#include <string_view>

#include "lib/smtp/dot_stuffer.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/lib/smtp/codec_drivers.h"

using namespace sluice::smtp;

namespace {

using Decoded = sluice::smtp::test_drivers::DataDecode;

Decoded Feed(const std::vector<std::string_view>& chunks) {
  Decoded d = sluice::smtp::test_drivers::DecodeData(chunks);
  FUZZ_CHECK(d.chunk_accounting_ok);
  return d;
}

// Where CRLF.CRLF ends the data, from first principles; npos if it does not.
size_t ExpectedEnd(std::string_view in) {
  if (in.substr(0, 3) == ".\r\n") return 3;
  const size_t pos = in.find("\r\n.\r\n");
  return pos == std::string_view::npos ? pos : pos + 5;
}

bool HasBareCr(std::string_view s) {
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\r' && (i + 1 == s.size() || s[i + 1] != '\n')) return true;
  }
  return false;
}

bool HasBareLf(std::string_view s) {
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r')) return true;
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  sluice::fuzz::SplitRng rng(in);

  const Decoded whole = Feed({in});
  FUZZ_CHECK(Feed(rng.Chunks(in, 1 + rng.Next() % 64)) == whole);
  FUZZ_CHECK(Feed(rng.Chunks(in, 3)) == whole);
  if (size <= 512) {
    std::vector<std::string_view> bytes;
    for (size_t i = 0; i < size; ++i) bytes.push_back(in.substr(i, 1));
    FUZZ_CHECK(Feed(bytes) == whole);
  }

  // Only CRLF.CRLF ends the message (SMTP smuggling).
  const size_t end = ExpectedEnd(in);
  FUZZ_CHECK(whole.done == (end != std::string_view::npos));
  if (whole.done) {
    FUZZ_CHECK(whole.consumed == end);
    const std::string_view used = in.substr(0, end);
    FUZZ_CHECK(whole.bare_cr == HasBareCr(used));
    FUZZ_CHECK(whole.bare_lf == HasBareLf(used));
    FUZZ_CHECK(whole.out.size() < end);
  } else {
    FUZZ_CHECK(whole.consumed == size);
  }

  // Round trip through the client side, for content with CRLF line ends only.
  if (!HasBareCr(in) && !HasBareLf(in)) {
    DotStuffer stuffer;
    std::string wire;
    for (std::string_view chunk : rng.Chunks(in, 1 + rng.Next() % 32)) stuffer.Feed(chunk, wire);
    stuffer.Finish(wire);
    const Decoded back = Feed(rng.Chunks(wire, 1 + rng.Next() % 32));
    std::string expected(in);
    if (!expected.empty() && !(expected.size() >= 2 && expected.substr(expected.size() - 2) == "\r\n")) {
      expected += "\r\n";
    }
    FUZZ_CHECK(back.done);
    FUZZ_CHECK(back.consumed == wire.size());
    FUZZ_CHECK(back.out == expected);
    FUZZ_CHECK(!back.bare_cr && !back.bare_lf);
  }
  return 0;
}
