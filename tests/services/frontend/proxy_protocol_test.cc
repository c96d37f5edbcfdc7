// tests/services/frontend/proxy_protocol_test.cc
//
// The PROXY protocol parser (HAProxy proxy-protocol.txt, v1 §2.1 and v2 §2.2): valid v1 and
// v2 headers (TCP4, TCP6, UNKNOWN, LOCAL, TLVs), malformed ones refused, and every header
// fed one byte more at a time: incomplete until the last byte, complete and exact then.
//
// Never: depends on the network.
#include "services/frontend/proxy_protocol.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace sluice::frontend {
namespace {

const std::string kSig("\r\n\r\n\0\r\nQUIT\n", 12);

std::string V2(uint8_t ver_cmd, uint8_t fam, const std::string& body) {
  std::string h = kSig;
  h.push_back(static_cast<char>(ver_cmd));
  h.push_back(static_cast<char>(fam));
  h.push_back(static_cast<char>(body.size() >> 8));
  h.push_back(static_cast<char>(body.size() & 0xff));
  return h + body;
}

std::string Addr(int family, const char* text) {
  unsigned char buf[16];
  EXPECT_EQ(inet_pton(family, text, buf), 1);
  return std::string(reinterpret_cast<char*>(buf), family == AF_INET ? 4 : 16);
}

std::string Ports(uint16_t s, uint16_t d) {
  return std::string{static_cast<char>(s >> 8), static_cast<char>(s & 0xff), static_cast<char>(d >> 8),
                     static_cast<char>(d & 0xff)};
}

std::string V2Tcp4(const char* src, const char* dst, uint16_t sp, uint16_t dp, const std::string& tlvs = "") {
  return V2(0x21, 0x11, Addr(AF_INET, src) + Addr(AF_INET, dst) + Ports(sp, dp) + tlvs);
}

ProxyParseResult Parse(const std::string& s, ProxyHeader& h) { return ParseProxyHeader(s, h); }

TEST(ProxyProtocol, V1Tcp4) {
  ProxyHeader h;
  std::string in = "PROXY TCP4 198.51.100.7 192.0.2.1 40001 25\r\nEHLO x\r\n";
  auto r = Parse(in, h);
  ASSERT_EQ(r.status, ProxyParse::kComplete) << r.error;
  EXPECT_EQ(r.consumed, in.find("EHLO"));
  EXPECT_EQ(h.version, 1);
  EXPECT_FALSE(h.local);
  EXPECT_EQ(h.source_address, "198.51.100.7");
  EXPECT_EQ(h.source_port, 40001);
  EXPECT_EQ(h.dest_address, "192.0.2.1");
  EXPECT_EQ(h.dest_port, 25);
}

TEST(ProxyProtocol, V1Tcp6) {
  ProxyHeader h;
  auto r = Parse("PROXY TCP6 2001:db8::5 2001:db8::1 65535 25\r\n", h);
  ASSERT_EQ(r.status, ProxyParse::kComplete) << r.error;
  EXPECT_EQ(h.source_address, "2001:db8::5");
  EXPECT_EQ(h.source_port, 65535);
}

TEST(ProxyProtocol, V1UnknownKeepsThePeer) {
  ProxyHeader h;
  auto r = Parse("PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n", h);
  ASSERT_EQ(r.status, ProxyParse::kComplete) << r.error;
  EXPECT_TRUE(h.local);
  r = Parse("PROXY UNKNOWN\r\n", h);
  ASSERT_EQ(r.status, ProxyParse::kComplete) << r.error;
  EXPECT_TRUE(h.local);
}

TEST(ProxyProtocol, V1Malformed) {
  for (const char* bad : {
           "PROXY TCP4 198.51.100.7 192.0.2.1 40001\r\n",            // a field missing
           "PROXY TCP4 198.51.100.7 192.0.2.1 40001 25 extra\r\n",   // one too many
           "PROXY TCP5 198.51.100.7 192.0.2.1 40001 25\r\n",         // protocol
           "PROXY TCP4 2001:db8::5 192.0.2.1 40001 25\r\n",          // family mismatch
           "PROXY TCP6 198.51.100.7 2001:db8::1 40001 25\r\n",
           "PROXY TCP4 999.51.100.7 192.0.2.1 40001 25\r\n",         // address
           "PROXY TCP4 198.51.100.7 192.0.2.1 65536 25\r\n",         // port range
           "PROXY TCP4 198.51.100.7 192.0.2.1 040001 25\r\n",        // leading zero
           "PROXY TCP4 198.51.100.7 192.0.2.1 -1 25\r\n",
           "PROXY TCP4 198.51.100.7 192.0.2.1 4a 25\r\n",
           "PROXY TCP4  198.51.100.7 192.0.2.1 40001 25\r\n",        // double space
           "PROXY\r\n",
           "proxy TCP4 198.51.100.7 192.0.2.1 40001 25\r\n",         // case
           "EHLO client.example\r\n",                                // no header at all
       }) {
    ProxyHeader h;
    EXPECT_EQ(Parse(bad, h).status, ProxyParse::kError) << bad;
  }
}

TEST(ProxyProtocol, V1TooLongWithoutEnd) {
  ProxyHeader h;
  std::string in = "PROXY TCP4 " + std::string(200, '1');
  EXPECT_EQ(Parse(in, h).status, ProxyParse::kError);
  in = "PROXY UNKNOWN " + std::string(100, 'x') + "\r\n";  // 116 bytes > 107
  EXPECT_EQ(Parse(in, h).status, ProxyParse::kError);
}

TEST(ProxyProtocol, V2Tcp4WithTlvs) {
  ProxyHeader h;
  std::string tlvs = std::string("\x04\x00\x02", 3) + "ab";  // PP2_TYPE_NOOP, skipped
  std::string in = V2Tcp4("203.0.113.9", "192.0.2.1", 50002, 25, tlvs) + "EHLO x\r\n";
  auto r = Parse(in, h);
  ASSERT_EQ(r.status, ProxyParse::kComplete) << r.error;
  EXPECT_EQ(r.consumed, in.size() - 8);
  EXPECT_EQ(h.version, 2);
  EXPECT_EQ(h.source_address, "203.0.113.9");
  EXPECT_EQ(h.source_port, 50002);
  EXPECT_EQ(h.dest_address, "192.0.2.1");
  EXPECT_EQ(h.dest_port, 25);
}

TEST(ProxyProtocol, V2Tcp6) {
  ProxyHeader h;
  std::string in = V2(0x21, 0x21, Addr(AF_INET6, "2001:db8::5") + Addr(AF_INET6, "2001:db8::1") + Ports(1, 2));
  auto r = Parse(in, h);
  ASSERT_EQ(r.status, ProxyParse::kComplete) << r.error;
  EXPECT_EQ(h.source_address, "2001:db8::5");
  EXPECT_EQ(h.source_port, 1);
  EXPECT_EQ(h.dest_port, 2);
}

TEST(ProxyProtocol, V2LocalAndUnspecKeepThePeer) {
  ProxyHeader h;
  auto r = Parse(V2(0x20, 0x00, ""), h);
  ASSERT_EQ(r.status, ProxyParse::kComplete);
  EXPECT_TRUE(h.local);
  EXPECT_EQ(r.consumed, 16u);
  r = Parse(V2(0x21, 0x00, ""), h);  // PROXY command, AF_UNSPEC
  ASSERT_EQ(r.status, ProxyParse::kComplete);
  EXPECT_TRUE(h.local);
}

TEST(ProxyProtocol, V2Malformed) {
  ProxyHeader h;
  EXPECT_EQ(Parse(V2(0x11, 0x11, std::string(12, '\0')), h).status, ProxyParse::kError) << "version 1 in v2 form";
  EXPECT_EQ(Parse(V2(0x22, 0x11, std::string(12, '\0')), h).status, ProxyParse::kError) << "command 2";
  EXPECT_EQ(Parse(V2(0x21, 0x11, std::string(11, '\0')), h).status, ProxyParse::kError) << "short IPv4 block";
  EXPECT_EQ(Parse(V2(0x21, 0x21, std::string(35, '\0')), h).status, ProxyParse::kError) << "short IPv6 block";
  std::string bad_sig = V2Tcp4("203.0.113.9", "192.0.2.1", 1, 2);
  bad_sig[11] = 'X';
  EXPECT_EQ(Parse(bad_sig, h).status, ProxyParse::kError);
}

TEST(ProxyProtocol, V2WaitsForItsDeclaredLength) {
  ProxyHeader h;
  std::string in = V2Tcp4("203.0.113.9", "192.0.2.1", 1, 2, std::string(300, '\0'));
  EXPECT_EQ(Parse(in.substr(0, in.size() - 1), h).status, ProxyParse::kNeedMore);
  EXPECT_EQ(Parse(in, h).status, ProxyParse::kComplete);
}

TEST(ProxyProtocol, EverySplitIsIncompleteUntilTheLastByte) {
  std::vector<std::string> headers = {
      "PROXY TCP4 198.51.100.7 192.0.2.1 40001 25\r\n",
      "PROXY TCP6 2001:db8::5 2001:db8::1 1 2\r\n",
      "PROXY UNKNOWN\r\n",
      V2Tcp4("203.0.113.9", "192.0.2.1", 50002, 25, std::string("\x04\x00\x01z", 4)),
      V2(0x20, 0x00, ""),
  };
  for (const std::string& header : headers) {
    std::string in = header + "EHLO x\r\n";
    for (size_t n = 0; n < header.size(); ++n) {
      ProxyHeader h;
      auto r = Parse(in.substr(0, n), h);
      EXPECT_EQ(r.status, ProxyParse::kNeedMore) << "prefix " << n << " of " << header.size();
    }
    for (size_t n = header.size(); n <= in.size(); ++n) {
      ProxyHeader h;
      auto r = Parse(in.substr(0, n), h);
      ASSERT_EQ(r.status, ProxyParse::kComplete) << "prefix " << n << ": " << r.error;
      EXPECT_EQ(r.consumed, header.size());
    }
  }
}

TEST(ProxyProtocol, NonHeaderIsRefusedAtTheFirstDifferentByte) {
  ProxyHeader h;
  EXPECT_EQ(Parse("E", h).status, ProxyParse::kError);
  EXPECT_EQ(Parse("PROXX", h).status, ProxyParse::kError);
  EXPECT_EQ(Parse(std::string("\r\n\r\n\0\r\nQUIX", 12), h).status, ProxyParse::kError);
}

}  // namespace
}  // namespace sluice::frontend
