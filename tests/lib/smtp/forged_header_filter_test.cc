// tests/lib/smtp/forged_header_filter_test.cc
//
// The frontend's forged-header filter: every X-Sluice-* field and every
// Authentication-Results field naming our authserv-id (RFC 8601 §5) leaves the header,
// continuation lines included; everything else, the body above all, passes byte for byte.
// Every input is also fed split at every byte boundary and byte by byte, and must give
// exactly the same output.
//
// Never: checks a case only in one piece.
#include "lib/smtp/forged_header_filter.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace sluice::smtp {
namespace {

constexpr char kOurs[] = "mx.example.net";

struct Filtered {
  std::string out;
  uint64_t sluice = 0;
  uint64_t auth = 0;
  bool operator==(const Filtered&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Filtered& f) {
  return os << "{out=\"" << f.out << "\" sluice=" << f.sluice << " auth=" << f.auth << "}";
}

Filtered FeedChunks(const std::vector<std::string_view>& chunks, size_t max_pending = 102400,
                    std::string authserv_id = kOurs) {
  ForgedHeaderFilter f({authserv_id, max_pending});
  Filtered r;
  for (std::string_view c : chunks) f.Feed(c, r.out);
  f.Finish(r.out);
  r.sluice = f.removed_sluice_fields();
  r.auth = f.removed_authentication_results();
  return r;
}

Filtered Filter(std::string_view in, size_t max_pending = 102400, std::string authserv_id = kOurs) {
  const Filtered whole = FeedChunks({in}, max_pending, authserv_id);
  for (size_t i = 0; i <= in.size(); ++i) {
    EXPECT_EQ(FeedChunks({in.substr(0, i), in.substr(i)}, max_pending, authserv_id), whole) << "split at " << i;
  }
  std::vector<std::string_view> bytes;
  for (size_t i = 0; i < in.size(); ++i) bytes.push_back(in.substr(i, 1));
  EXPECT_EQ(FeedChunks(bytes, max_pending, authserv_id), whole) << "byte by byte";
  return whole;
}

TEST(ForgedHeaderFilterTest, PassesAnOrdinaryMessageByteForByte) {
  const std::string msg =
      "From: a@example.com\r\nSubject: hello\r\n  folded\r\nX-Other: 1\r\n\r\nX-Sluice-Hold: body\r\n";
  EXPECT_EQ(Filter(msg), (Filtered{msg, 0, 0}));
}

TEST(ForgedHeaderFilterTest, RemovesEverySluiceFieldWithItsContinuationLines) {
  const std::string msg =
      "Received: from x\r\n"
      "X-Sluice-Filter: mx; rules=accept\r\n"
      "\tfolded line\r\n"
      "Subject: s\r\n"
      "x-sluice-hold: spam\r\n"
      "X-SLUICE-Anything:\r\n"
      "  more\r\n"
      "  and more\r\n"
      "To: b@example.net\r\n"
      "\r\n"
      "X-Sluice-Filter: in the body stays\r\n";
  EXPECT_EQ(Filter(msg), (Filtered{"Received: from x\r\n"
                                   "Subject: s\r\n"
                                   "To: b@example.net\r\n"
                                   "\r\n"
                                   "X-Sluice-Filter: in the body stays\r\n",
                                   3, 0}));
}

TEST(ForgedHeaderFilterTest, KeepsFieldsThatOnlyLookAlike) {
  const std::string msg = "X-Sluice: a\r\nX-Sluic: b\r\nXX-Sluice-Hold: c\r\nAuthentication-Results-X: mx.example.net; d\r\n"
                          "Authentication-Result: mx.example.net; e\r\n\r\n";
  EXPECT_EQ(Filter(msg), (Filtered{msg, 0, 0}));
}

TEST(ForgedHeaderFilterTest, RemovesAuthenticationResultsClaimingOurAuthservId) {
  const std::string msg =
      "Authentication-Results: mx.example.net; spf=pass smtp.mailfrom=a@example.com\r\n"
      "Authentication-Results: other.example; dkim=pass\r\n"
      "authentication-results: MX.Example.NET 1; dmarc=pass\r\n"
      "Authentication-Results: (a comment (nested \\) still)) mx.example.net;\r\n"
      "  dkim=pass header.d=example.com\r\n"
      "Authentication-Results:\r\n"
      "  mx.example.net; folded before the id\r\n"
      "Authentication-Results: \"mx.example.net\"; quoted\r\n"
      "Authentication-Results : mx.example.net; obsolete space before the colon\r\n"
      "Authentication-Results: mx.example.net.evil; not ours\r\n"
      "Authentication-Results: mx.example.net(comment right after); ours\r\n"
      "Subject: s\r\n"
      "\r\n"
      "Authentication-Results: mx.example.net; in the body stays\r\n";
  EXPECT_EQ(Filter(msg), (Filtered{"Authentication-Results: other.example; dkim=pass\r\n"
                                   "Authentication-Results: mx.example.net.evil; not ours\r\n"
                                   "Subject: s\r\n"
                                   "\r\n"
                                   "Authentication-Results: mx.example.net; in the body stays\r\n",
                                   0, 7}));
}

TEST(ForgedHeaderFilterTest, AuthenticationResultsWithoutAnyAuthservIdClaimsNoneAndPasses) {
  const std::string msg = "Authentication-Results: (only a comment)\r\nAuthentication-Results: ; none\r\n"
                          "Authentication-Results:\r\nSubject: s\r\n\r\nbody\r\n";
  EXPECT_EQ(Filter(msg), (Filtered{msg, 0, 0}));
}

TEST(ForgedHeaderFilterTest, AnAuthservIdNotReadableWithinTheBoundIsRemoved) {
  const std::string comment(200, 'c');
  const std::string msg = "Subject: s\r\nAuthentication-Results: (" + comment + ") mx.example.net; x\r\n" +
                          "Authentication-Results: (" + comment + ") other.example; y\r\n\r\nbody\r\n";
  // Bound 64: neither id can be read in time, both go.
  EXPECT_EQ(Filter(msg, 64), (Filtered{"Subject: s\r\n\r\nbody\r\n", 0, 2}));
  // With room, only ours goes.
  EXPECT_EQ(Filter(msg, 1024),
            (Filtered{"Subject: s\r\nAuthentication-Results: (" + comment + ") other.example; y\r\n\r\nbody\r\n", 0, 1}));
}

TEST(ForgedHeaderFilterTest, NeverHoldsMoreThanTheBound) {
  ForgedHeaderFilter f({kOurs, 64});
  std::string out;
  f.Feed("Authentication-Results: (", out);
  for (int i = 0; i < 1000; ++i) f.Feed(std::string(100, 'x'), out);
  f.Feed(") mx.example.net\r\n\r\nbody", out);
  f.Finish(out);
  EXPECT_EQ(out, "\r\nbody");
  EXPECT_EQ(f.removed_authentication_results(), 1u);
}

TEST(ForgedHeaderFilterTest, NoAuthservIdLeavesAuthenticationResultsAlone) {
  const std::string msg = "Authentication-Results: mx.example.net; spf=pass\r\nX-Sluice-Hold: h\r\n\r\n";
  EXPECT_EQ(Filter(msg, 102400, ""), (Filtered{"Authentication-Results: mx.example.net; spf=pass\r\n\r\n", 1, 0}));
}

TEST(ForgedHeaderFilterTest, AHeaderWithoutBodyIsFlushedAtTheEnd) {
  EXPECT_EQ(Filter("Subject: s\r\nAuthentication-Results: (open comment\r\n"),
            (Filtered{"Subject: s\r\nAuthentication-Results: (open comment\r\n", 0, 0}));
  EXPECT_EQ(Filter("Subject: s\r\nAuthentication-Results: mx.example.net\r\n"), (Filtered{"Subject: s\r\n", 0, 1}));
  EXPECT_EQ(Filter("Subject: s\r\nX-Sluice-Hold: x\r\n"), (Filtered{"Subject: s\r\n", 1, 0}));
  EXPECT_EQ(Filter("Subject"), (Filtered{"Subject", 0, 0}));
  EXPECT_EQ(Filter("Subject: s\r\n\r"), (Filtered{"Subject: s\r\n\r", 0, 0}));
}

TEST(ForgedHeaderFilterTest, AMessageWithoutHeaderIsAllBody) {
  const std::string msg = "\r\nX-Sluice-Hold: not a header here\r\n";
  EXPECT_EQ(Filter(msg), (Filtered{msg, 0, 0}));
}

TEST(ForgedHeaderFilterTest, ALineWithoutColonPassesAndTheHeaderGoesOn) {
  const std::string msg = "From nobody\r\nX-Sluice-Hold: after junk\r\nSubject: s\r\n\r\n";
  EXPECT_EQ(Filter(msg), (Filtered{"From nobody\r\nSubject: s\r\n\r\n", 1, 0}));
}

TEST(ForgedHeaderFilterTest, BareCarriageReturnsAreOrdinaryBytes) {
  const std::string msg = "Subject: a\rb\r\n\rX: y\r\nX-Sluice-Hold: h\r\n\r\n";
  EXPECT_EQ(Filter(msg), (Filtered{"Subject: a\rb\r\n\rX: y\r\n\r\n", 1, 0}));
}

}  // namespace
}  // namespace sluice::smtp
