// tests/services/filter-bridge/crlf_normalizer_test.cc
//
// Filter-supplied bodies come out with CRLF line ends only, wherever the chunks split.
#include "services/filter-bridge/message/crlf_normalizer.h"

#include <gtest/gtest.h>

#include <string>

namespace sluice::filter_bridge {
namespace {

std::string Normalize(const std::string& in, size_t chunk) {
  CrlfNormalizer n;
  std::string out;
  for (size_t i = 0; i < in.size(); i += chunk) n.Feed(std::string_view(in).substr(i, chunk), &out);
  n.Finish(&out);
  return out;
}

TEST(CrlfNormalizerTest, BareLfAndBareCrBecomeCrlf) {
  for (size_t chunk : {1u, 2u, 3u, 100u}) {
    EXPECT_EQ(Normalize("a\nb\rc\r\nd", chunk), "a\r\nb\r\nc\r\nd\r\n") << chunk;
    EXPECT_EQ(Normalize("x\r\n\r\n", chunk), "x\r\n\r\n") << chunk;
    EXPECT_EQ(Normalize("\r\r\n", chunk), "\r\n\r\n") << chunk;
    EXPECT_EQ(Normalize("end\r", chunk), "end\r\n") << chunk;
  }
  EXPECT_EQ(Normalize("", 1), "");
}

}  // namespace
}  // namespace sluice::filter_bridge
