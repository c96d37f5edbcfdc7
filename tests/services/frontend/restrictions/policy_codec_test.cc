// tests/services/frontend/restrictions/policy_codec_test.cc
//
// The policy delegation protocol's wire format: a request is name=value lines and an empty
// line, a value never carries a line end; an answer is read only once its empty line is
// there, possibly split across reads, bounded per line, and a malformed one is an error.
// The attributes Postfix sends are all there, with the command's protocol_state.
//
// Never: uses the network.
#include <gtest/gtest.h>

#include "services/frontend/restrictions/policy_client.h"
#include "services/frontend/restrictions/policy_codec.h"

namespace sluice::frontend::restrictions {
namespace {

TEST(PolicyCodec, EncodesOneLinePerAttributeAndAnEmptyLine) {
  PolicyAttributes a{{"request", "smtpd_access_policy"}, {"helo_name", "evil\r\naction=OK"}};
  EXPECT_EQ(EncodePolicyRequest(a), "request=smtpd_access_policy\nhelo_name=evil  action=OK\n\n");
}

TEST(PolicyCodec, DecodesAnAnswerOnlyOnceItIsComplete) {
  auto partial = DecodePolicyAnswer("action=DEFER_IF_PERMIT Greylisted\n", 2048);
  ASSERT_TRUE(partial.ok());
  EXPECT_FALSE(partial->complete);
  auto whole = DecodePolicyAnswer("action=DEFER_IF_PERMIT Greylisted, see x\n\nextra", 2048);
  ASSERT_TRUE(whole.ok());
  EXPECT_TRUE(whole->complete);
  EXPECT_EQ(whole->consumed, 42u);
  EXPECT_EQ(whole->action(), "DEFER_IF_PERMIT Greylisted, see x");
}

TEST(PolicyCodec, RefusesMalformedOrEndlessAnswers) {
  EXPECT_FALSE(DecodePolicyAnswer("no equals sign\n\n", 2048).ok());
  EXPECT_FALSE(DecodePolicyAnswer(std::string(3000, 'a'), 2048).ok());
  EXPECT_FALSE(DecodePolicyAnswer("action=" + std::string(3000, 'a') + "\n\n", 2048).ok());
}

TEST(PolicyRequest, CarriesPostfixsAttributeSet) {
  smtp::SessionFacts f;
  f.session_id = "S1";
  f.client_address = "192.0.2.1";
  f.client_port = 4242;
  f.helo = "mx.example.org";
  f.esmtp = true;
  Request r;
  r.command = Stage::kRcpt;
  r.facts = &f;
  r.in_transaction = true;
  r.sender = "a@example.org";
  r.recipient = "b@example.com";
  r.instance = "S1.1";
  r.size = 1234;
  PolicyAttributes a = PolicyRequestAttributes(r, "ctx");
  auto get = [&](const std::string& name) -> std::string {
    for (const auto& [n, v] : a) {
      if (n == name) return v;
    }
    return "<missing>";
  };
  EXPECT_EQ(a.front().first, "request");
  EXPECT_EQ(get("request"), "smtpd_access_policy");
  EXPECT_EQ(get("protocol_state"), "RCPT");
  EXPECT_EQ(get("protocol_name"), "ESMTP");
  EXPECT_EQ(get("helo_name"), "mx.example.org");
  EXPECT_EQ(get("sender"), "a@example.org");
  EXPECT_EQ(get("recipient"), "b@example.com");
  EXPECT_EQ(get("client_address"), "192.0.2.1");
  EXPECT_EQ(get("client_name"), "unknown");
  EXPECT_EQ(get("reverse_client_name"), "unknown");
  EXPECT_EQ(get("client_port"), "4242");
  EXPECT_EQ(get("instance"), "S1.1");
  EXPECT_EQ(get("size"), "1234");
  EXPECT_EQ(get("policy_context"), "ctx");
  for (const char* name : {"queue_id", "recipient_count", "sasl_method", "sasl_username", "sasl_sender",
                           "ccert_subject", "ccert_issuer", "ccert_fingerprint", "ccert_pubkey_fingerprint",
                           "encryption_protocol", "encryption_cipher", "encryption_keysize", "etrn_domain",
                           "stress", "server_address", "server_port", "compatibility_level", "mail_version"}) {
    EXPECT_NE(get(name), "<missing>") << name;
  }
}

TEST(PolicyService, ParsesInetTargetsOnly) {
  auto t = ParsePolicyService("inet:127.0.0.1:10023");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->host, "127.0.0.1");
  EXPECT_EQ(t->port, 10023);
  EXPECT_TRUE(ParsePolicyService("policy.example:9998").ok());
  EXPECT_FALSE(ParsePolicyService("unix:private/policy").ok());
  EXPECT_FALSE(ParsePolicyService("inet:nohostport").ok());
}

}  // namespace
}  // namespace sluice::frontend::restrictions
