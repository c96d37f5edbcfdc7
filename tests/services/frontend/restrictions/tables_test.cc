// tests/services/frontend/restrictions/tables_test.cc
//
// The restriction tables: relay_recipients (addresses and @domain catch-alls, covering only
// the domains they name), access tables (CIDR / domain / address keys with Postfix's lookup
// order, every action of access(5) and its reply), and the reload of a table whose files
// change -- including a ConfigMap-style swap of the `..data` symlink -- while a malformed
// new version leaves the old table in use.
//
// Never: uses the network.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "services/frontend/restrictions/access_action.h"
#include "services/frontend/restrictions/access_tables.h"
#include "services/frontend/restrictions/recipient_tables.h"
#include "services/frontend/restrictions/table_files.h"

namespace sluice::frontend::restrictions {
namespace {

std::vector<FileText> Text(const std::string& text) { return {FileText{"t.txt", text}}; }

TEST(RecipientTable, ListsAddressesAndCatchAllsOfTheDomainsItNames) {
  auto t = ParseRecipientTable(Text("# valid users\nAlice@Example.COM OK\n@catch.example\n\n  \nbob@example.com\n"));
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(LookupRecipient(*t, "alice@example.com"), RecipientLookup::kListed);
  EXPECT_EQ(LookupRecipient(*t, "ALICE@example.com."), RecipientLookup::kListed);
  EXPECT_EQ(LookupRecipient(*t, "bob@example.com"), RecipientLookup::kListed);
  EXPECT_EQ(LookupRecipient(*t, "mallory@example.com"), RecipientLookup::kUnlisted);
  EXPECT_EQ(LookupRecipient(*t, "anyone@catch.example"), RecipientLookup::kListed);
  EXPECT_EQ(LookupRecipient(*t, "x@other.example"), RecipientLookup::kNotCovered);
  EXPECT_EQ(LookupRecipient(*t, "postmaster"), RecipientLookup::kNotCovered);
}

TEST(RecipientTable, RefusesALineThatIsNoAddress) {
  auto t = ParseRecipientTable(Text("alice@example.com\njust-a-name\n"));
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().message(), "t.txt:2: expected user@domain or @domain");
}

TEST(AccessAction, RepliesAsPostfixCheckTableResult) {
  auto reply = [](std::string_view value) {
    auto a = ParseAccessAction(value);
    EXPECT_TRUE(a.ok()) << a.status();
    return VerdictFor(*a, "bad@example.org", "Sender address", "t").reply.ToString();
  };
  EXPECT_EQ(reply("REJECT"), "554 5.7.1 <bad@example.org>: Sender address rejected: Access denied");
  EXPECT_EQ(reply("REJECT go away"), "554 5.7.1 <bad@example.org>: Sender address rejected: go away");
  EXPECT_EQ(reply("DEFER"), "450 4.7.1 <bad@example.org>: Sender address rejected: Access denied");
  EXPECT_EQ(reply("550 5.7.23 SPF fail"), "550 5.7.23 <bad@example.org>: Sender address rejected: SPF fail");
  EXPECT_EQ(reply("450 not now"), "450 4.7.1 <bad@example.org>: Sender address rejected: not now");
  EXPECT_EQ(reply("451 5.3.0 class fixed"), "451 4.3.0 <bad@example.org>: Sender address rejected: class fixed");
  EXPECT_EQ(reply("DEFER_IF_PERMIT"), "450 4.7.1 <bad@example.org>: Sender address rejected: Service unavailable");
}

TEST(AccessAction, ActionsThatDoNotDecide) {
  auto verdict = [](std::string_view value) {
    auto a = ParseAccessAction(value);
    EXPECT_TRUE(a.ok()) << value << ": " << a.status();
    return VerdictFor(*a, "n", "Client host", "t");
  };
  EXPECT_EQ(verdict("OK").action, Action::kOk);
  EXPECT_EQ(verdict("relay").action, Action::kOk);
  EXPECT_EQ(verdict("20260101").action, Action::kOk);
  EXPECT_EQ(verdict("DUNNO").action, Action::kDunno);
  Verdict p = verdict("PREPEND X-Checked: by table");
  EXPECT_EQ(p.action, Action::kDunno);
  EXPECT_EQ(p.prepend, std::vector<std::string>{"X-Checked: by table"});
  EXPECT_EQ(verdict("HOLD suspicious").hold.value_or(""), "suspicious");
  EXPECT_TRUE(verdict("DISCARD").discard);
  EXPECT_EQ(verdict("WARN look at this").warn.value_or(""), "look at this");
  EXPECT_TRUE(verdict("FILTER smtp:[127.0.0.1]:10099").warn.has_value()) << "FILTER is logged, not done";
  EXPECT_FALSE(ParseAccessAction("PERMIT").ok());
  EXPECT_FALSE(ParseAccessAction("PREPEND no header").ok());
  EXPECT_EQ(verdict("550").action, Action::kOk) << "all digits is OK, as Postfix's alldig";
}

TEST(AccessTable, ClientByNameThenAddressThenNetworksInFileOrder) {
  auto t = ParseAccessTable(Text("192.0.2.7 OK\n192.0.2.0/24 REJECT bad net\n2001:db8::/32 DEFER\n"
                                 "spammer.example REJECT by name\n.dyn.example REJECT dynamic\n"));
  ASSERT_TRUE(t.ok()) << t.status();
  auto word = [&](std::string_view name, std::string_view addr) {
    const AccessAction* a = FindClient(*t, name, addr);
    return a ? a->word + " " + a->text : std::string("-");
  };
  EXPECT_EQ(word("unknown", "192.0.2.7"), "OK ");
  EXPECT_EQ(word("unknown", "192.0.2.8"), "REJECT bad net");
  EXPECT_EQ(word("unknown", "2001:db8::5"), "DEFER ");
  EXPECT_EQ(word("unknown", "198.51.100.1"), "-");
  EXPECT_EQ(word("mx.spammer.example", "198.51.100.1"), "REJECT by name");
  EXPECT_EQ(word("spammer.example", "198.51.100.1"), "REJECT by name");
  EXPECT_EQ(word("host1.dyn.example", "198.51.100.1"), "REJECT dynamic");
  EXPECT_EQ(word("dyn.example", "198.51.100.1"), "-") << ".domain names subdomains only";
}

TEST(AccessTable, SenderAsAddressThenDomainThenLocalPart) {
  auto t = ParseAccessTable(Text("boss@example.com OK\nexample.com REJECT domain\npostmaster@ DUNNO\n"
                                 "<> REJECT no bounces here\n"));
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(FindSender(*t, "Boss@Example.com")->word, "OK");
  EXPECT_EQ(FindSender(*t, "joe@example.com")->word, "REJECT");
  EXPECT_EQ(FindSender(*t, "joe@mail.example.com")->word, "REJECT");
  EXPECT_EQ(FindSender(*t, "postmaster@other.example")->word, "DUNNO");
  EXPECT_EQ(FindSender(*t, "")->text, "no bounces here");
  EXPECT_EQ(FindSender(*t, "joe@other.example"), nullptr);
}

TEST(AccessTable, AMalformedLineNamesFileAndLine) {
  auto t = ParseAccessTable(Text("ok.example OK\n\nbad.example PERMIT\n"));
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().message(), "t.txt:3: unknown action \"PERMIT\"");
  EXPECT_FALSE(ParseAccessTable(Text("192.0.2.0/33 OK\n")).ok());
  EXPECT_FALSE(ParseAccessTable(Text("lonely.example\n")).ok());
}

class TableReload : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("sluice-tables-" + std::to_string(::getpid()) + "-" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void Write(const std::filesystem::path& p, const std::string& text) {
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p) << text;
  }
  std::filesystem::path dir_;
};

TEST_F(TableReload, AConfigMapSymlinkSwapIsSeenAndABrokenVersionKeepsTheOld) {
  // kubelet's layout: name -> ..data/name, ..data -> ..2026_v1 (swapped atomically).
  Write(dir_ / "v1" / "recipients", "alice@example.com\n");
  Write(dir_ / "v2" / "recipients", "bob@example.com\n");
  Write(dir_ / "v3" / "recipients", "not an address\n");
  std::filesystem::create_directory_symlink("v1", dir_ / "..data");
  std::filesystem::create_symlink("..data/recipients", dir_ / "recipients");
  auto table = std::make_shared<ReloadingTable<RecipientTable>>(
      "relay_recipients", std::vector<std::string>{(dir_ / "recipients").string()}, ParseRecipientTable);
  ASSERT_TRUE(table->Reload().ok());
  int ok = 0, failed = 0;
  TableWatcher watcher([] { return std::chrono::milliseconds(10); }, [&](bool good) { ++(good ? ok : failed); });
  watcher.Watch(table);

  watcher.CheckOnce();
  EXPECT_EQ(ok + failed, 0) << "nothing changed";
  auto swap = [&](const char* version) {
    std::filesystem::create_directory_symlink(version, dir_ / "..data_tmp");
    std::filesystem::rename(dir_ / "..data_tmp", dir_ / "..data");
  };
  swap("v2");
  watcher.CheckOnce();
  EXPECT_EQ(ok, 1);
  EXPECT_EQ(LookupRecipient(*table->Get(), "bob@example.com"), RecipientLookup::kListed);
  EXPECT_EQ(LookupRecipient(*table->Get(), "alice@example.com"), RecipientLookup::kUnlisted);

  swap("v3");
  watcher.CheckOnce();
  EXPECT_EQ(failed, 1);
  EXPECT_EQ(LookupRecipient(*table->Get(), "bob@example.com"), RecipientLookup::kListed) << "old table kept";
  watcher.CheckOnce();
  EXPECT_EQ(failed, 1) << "a broken version is not retried until it changes again";
}

TEST_F(TableReload, TheWatcherThreadReloadsByItself) {
  Write(dir_ / "access", "192.0.2.1 OK\n");
  auto table = std::make_shared<ReloadingTable<AccessTable>>(
      "client_access", std::vector<std::string>{(dir_ / "access").string()}, ParseAccessTable);
  ASSERT_TRUE(table->Reload().ok());
  std::atomic<int> reloads{0};
  TableWatcher watcher([] { return std::chrono::milliseconds(5); }, [&](bool) { ++reloads; });
  watcher.Watch(table);
  watcher.Start();
  Write(dir_ / "access.new", "192.0.2.1 REJECT\n");
  std::filesystem::rename(dir_ / "access.new", dir_ / "access");
  for (int i = 0; i < 2000 && reloads.load() == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_EQ(reloads.load(), 1);
  EXPECT_EQ(FindClient(*table->Get(), "unknown", "192.0.2.1")->word, "REJECT");
}

}  // namespace
}  // namespace sluice::frontend::restrictions
