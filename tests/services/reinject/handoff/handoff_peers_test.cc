// tests/services/reinject/handoff/handoff_peers_test.cc
//
// ResolveHandoffPeers with real names from the system resolver: a DNS name (`localhost`)
// stands for every address it resolves to, an address of this host at this replica's own
// admin port is left out (a headless Service lists the replica itself), a literal is taken
// as given, and the name is kept for TLS.
//
// Never: needs a network beyond loopback; edits the resolver's files.
#include "services/reinject/handoff/handoff_peers.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace sluice::reinject {
namespace {

using ::testing::Contains;
using ::testing::Field;
using ::testing::IsEmpty;
using ::testing::Not;

TEST(HandoffPeers, ANameIsEveryAddressItResolvesToButThisReplicasOwn) {
  // Own admin port 9103: localhost:9103 is this replica on every address localhost has.
  auto own = ResolveHandoffPeers({"localhost:9103"}, 9103);
  ASSERT_TRUE(own.ok()) << own.status();
  EXPECT_THAT(*own, IsEmpty());
  // The same name at another port is a peer on each of its addresses, named for TLS.
  auto peers = ResolveHandoffPeers({"localhost:9104", "localhost:9103"}, 9103);
  ASSERT_TRUE(peers.ok()) << peers.status();
  ASSERT_THAT(*peers, Not(IsEmpty()));
  EXPECT_THAT(*peers, Contains(Field(&PeerEndpoint::label, "127.0.0.1:9104")));
  EXPECT_THAT(*peers, Not(Contains(Field(&PeerEndpoint::label, "127.0.0.1:9103"))));
  for (const PeerEndpoint& p : *peers) EXPECT_EQ(p.tls_name, "localhost") << p.label;
}

TEST(HandoffPeers, ALiteralIsTakenAsGivenWithoutATlsName) {
  auto peers = ResolveHandoffPeers({"10.0.0.7:9103", "[fd00::7]:9103"}, 9103);
  ASSERT_TRUE(peers.ok()) << peers.status();
  ASSERT_EQ(peers->size(), 2u);
  EXPECT_EQ((*peers)[0].label, "10.0.0.7:9103");
  EXPECT_EQ((*peers)[0].grpc_target, "ipv4:10.0.0.7:9103");
  EXPECT_EQ((*peers)[0].tls_name, "");
  EXPECT_EQ((*peers)[1].label, "[fd00::7]:9103");
  EXPECT_EQ((*peers)[1].grpc_target, "ipv6:[fd00::7]:9103");
}

TEST(HandoffPeers, AnUnresolvableNameIsLeftOutAndASpecWithoutPortRefused) {
  auto peers = ResolveHandoffPeers({"no-such-peer.invalid:9103", "10.0.0.8:9103"}, 9103);
  ASSERT_TRUE(peers.ok()) << peers.status();
  ASSERT_EQ(peers->size(), 1u);
  EXPECT_EQ((*peers)[0].label, "10.0.0.8:9103");
  EXPECT_FALSE(ResolveHandoffPeers({"reinject-admin"}, 9103).ok());
}

}  // namespace
}  // namespace sluice::reinject
