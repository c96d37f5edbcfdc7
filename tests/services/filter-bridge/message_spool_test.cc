// tests/services/filter-bridge/message_spool_test.cc
//
// The spool keeps every byte (memory and file mode alike), leaves no file behind, and parses
// the header section the way a mail reader would, folded and odd fields included.
//
// Never: depends on timing.
#include "services/filter-bridge/message/message_spool.h"

#include <dirent.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <random>
#include <string>

#include "lib/status/status_matchers.h"
#include "services/filter-bridge/message/header_section.h"

namespace sluice::filter_bridge {
namespace {

using ::sluice::testing::IsOk;
using ::testing::ElementsAre;

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/sluice-spool-test-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() { ::rmdir(path_.c_str()); }
  const std::string& path() const { return path_; }
  int Entries() const {
    int n = 0;
    DIR* d = ::opendir(path_.c_str());
    while (dirent* e = ::readdir(d)) {
      if (std::string(e->d_name) != "." && std::string(e->d_name) != "..") ++n;
    }
    ::closedir(d);
    return n;
  }

 private:
  std::string path_;
};

std::string ReadAll(const MessageSpool& spool) {
  std::string out;
  EXPECT_THAT(spool.ForEachChunk(0, spool.size(), 1000, [&](std::string_view c) {
    out.append(c);
    return absl::OkStatus();
  }), IsOk());
  return out;
}

std::string Body(const MessageSpool& spool) {
  std::string out;
  EXPECT_THAT(spool.ForEachBodyChunk([&](std::string_view c) {
    out.append(c);
    return absl::OkStatus();
  }), IsOk());
  return out;
}

// Feeds `content` in uneven pieces, as a network reader would.
void Feed(MessageSpool& spool, const std::string& content, size_t seed) {
  std::mt19937 rng(static_cast<uint32_t>(seed));
  size_t pos = 0;
  while (pos < content.size()) {
    size_t n = std::min<size_t>(content.size() - pos, 1 + rng() % 5000);
    ASSERT_THAT(spool.Append(std::string_view(content).substr(pos, n)), IsOk());
    pos += n;
  }
  ASSERT_THAT(spool.Finish(), IsOk());
}

std::string BigMessage() {
  std::string m =
      "Received: from a.example (a.example [192.0.2.1])\r\n"
      "\tby mx.example with ESMTP id 1234;\r\n"
      "\tTue, 1 Jan 2030 00:00:00 +0000\r\n"
      "From: Alice <alice@example.com>\r\n"
      "Subject: binary-ish \x01\x7f\xff bytes\r\n"
      "\r\n";
  std::mt19937 rng(7);
  for (int line = 0; line < 20000; ++line) {
    std::string l;
    for (int i = 0; i < 60; ++i) l.push_back(static_cast<char>(32 + rng() % 95));
    m += l + "\r\n";
  }
  return m;
}

TEST(MessageSpoolTest, MemoryAndFileModesKeepIdenticalBytes) {
  TempDir dir;
  const std::string content = BigMessage();
  MessageSpool in_memory(content.size(), dir.path());
  Feed(in_memory, content, 1);
  MessageSpool on_disk(4096, dir.path());
  Feed(on_disk, content, 2);
  EXPECT_FALSE(in_memory.on_disk());
  EXPECT_TRUE(on_disk.on_disk());
  EXPECT_EQ(in_memory.size(), content.size());
  EXPECT_EQ(on_disk.size(), content.size());
  EXPECT_EQ(ReadAll(in_memory), content);
  EXPECT_EQ(ReadAll(on_disk), content);
  EXPECT_EQ(Body(in_memory), Body(on_disk));
  ASSERT_EQ(on_disk.headers().size(), 3u);
  EXPECT_EQ(on_disk.headers()[0].raw(), in_memory.headers()[0].raw());
  EXPECT_EQ(on_disk.body_offset(), content.find("\r\n\r\n") + 4);
}

TEST(MessageSpoolTest, TemporaryFileIsUnlinkedAtOnce) {
  TempDir dir;
  {
    MessageSpool spool(16, dir.path());
    ASSERT_THAT(spool.Append("Subject: x\r\n\r\nbody that is longer than sixteen bytes\r\n"), IsOk());
    ASSERT_TRUE(spool.on_disk());
    EXPECT_EQ(dir.Entries(), 0);
    ASSERT_THAT(spool.Finish(), IsOk());
    EXPECT_EQ(Body(spool), "body that is longer than sixteen bytes\r\n");
  }
  EXPECT_EQ(dir.Entries(), 0);
}

TEST(MessageSpoolTest, UnwritableSpoolDirectoryIsAnError) {
  MessageSpool spool(4, "/nonexistent/sluice-spool-dir");
  EXPECT_FALSE(spool.Append("more than four bytes").ok());
  EXPECT_FALSE(spool.Finish().ok());
}

TEST(MessageSpoolTest, BodyOnlySpoolParsesNoHeader) {
  auto spool = MessageSpool::ForBody(SpoolOptions{});
  ASSERT_THAT(spool->Append("Subject: not a header\r\n\r\nx\r\n"), IsOk());
  ASSERT_THAT(spool->Finish(), IsOk());
  EXPECT_TRUE(spool->headers().empty());
  EXPECT_EQ(spool->body_offset(), 0u);
  EXPECT_EQ(Body(*spool), "Subject: not a header\r\n\r\nx\r\n");
}

TEST(MessageSpoolTest, SpoolReaderReturnsConsecutiveChunks) {
  MessageSpool spool(8, "");
  ASSERT_THAT(spool.Append("H: v\r\n\r\n0123456789abcdef"), IsOk());
  ASSERT_THAT(spool.Finish(), IsOk());
  SpoolReader reader(spool, spool.body_offset(), spool.size());
  std::string chunk, all;
  int chunks = 0;
  while (reader.Next(5, &chunk)) {
    EXPECT_LE(chunk.size(), 5u);
    all += chunk;
    ++chunks;
  }
  EXPECT_THAT(reader.status(), IsOk());
  EXPECT_EQ(all, "0123456789abcdef");
  EXPECT_EQ(chunks, 4);
}

std::vector<std::string> Names(const HeaderSection& s) {
  std::vector<std::string> v;
  for (const auto& f : s.fields) v.emplace_back(f.name());
  return v;
}

TEST(HeaderSectionTest, FoldedFieldsKeepTheirBytes) {
  const std::string m =
      "Subject: one\r\n"
      " two\r\n"
      "\tthree\r\n"
      "X-Empty:\r\n"
      "X-Spaced   :  padded  \r\n"
      "\r\n"
      "body\r\n";
  HeaderSection s = ParseHeaderSection(m, true, HeaderLimits{});
  ASSERT_THAT(Names(s), ElementsAre("Subject", "X-Empty", "X-Spaced"));
  EXPECT_EQ(s.fields[0].raw(), "Subject: one\r\n two\r\n\tthree\r\n");
  EXPECT_EQ(s.fields[0].raw_value(), " one\r\n two\r\n\tthree");
  EXPECT_EQ(s.fields[0].UnfoldedValue(), "one two\tthree");
  EXPECT_EQ(s.fields[1].UnfoldedValue(), "");
  EXPECT_EQ(s.fields[2].UnfoldedValue(), "padded");
  EXPECT_TRUE(s.has_separator);
  EXPECT_EQ(m.substr(s.body_offset), "body\r\n");
  EXPECT_FALSE(s.truncated);
}

TEST(HeaderSectionTest, NonFieldLineStartsTheBodyWithoutSeparator) {
  const std::string m = "From: a@b\r\nthis is not a header\r\nTo: c@d\r\n";
  HeaderSection s = ParseHeaderSection(m, true, HeaderLimits{});
  ASSERT_THAT(Names(s), ElementsAre("From"));
  EXPECT_FALSE(s.has_separator);
  EXPECT_EQ(m.substr(s.body_offset), "this is not a header\r\nTo: c@d\r\n");
}

TEST(HeaderSectionTest, LeadingContinuationLineIsBody) {
  const std::string m = " folded-first: x\r\n\r\nb\r\n";
  HeaderSection s = ParseHeaderSection(m, true, HeaderLimits{});
  EXPECT_TRUE(s.fields.empty());
  EXPECT_EQ(s.body_offset, 0u);
}

TEST(HeaderSectionTest, BareLfDoesNotEndALine) {
  const std::string m = "Subject: a\nInjected: b\r\n\r\n";
  HeaderSection s = ParseHeaderSection(m, true, HeaderLimits{});
  ASSERT_THAT(Names(s), ElementsAre("Subject"));
  EXPECT_EQ(s.fields[0].raw_value(), " a\nInjected: b");
}

TEST(HeaderSectionTest, HeaderOnlyMessage) {
  HeaderSection s = ParseHeaderSection("A: 1\r\nB: 2\r\n", true, HeaderLimits{});
  EXPECT_THAT(Names(s), ElementsAre("A", "B"));
  EXPECT_FALSE(s.has_separator);
  EXPECT_EQ(s.body_offset, 12u);
}

TEST(HeaderSectionTest, FieldCountBeyondTheBoundIsBody) {
  std::string m;
  for (int i = 0; i < 10; ++i) m += "X-N: " + std::to_string(i) + "\r\n";
  m += "\r\nbody\r\n";
  HeaderSection s = ParseHeaderSection(m, true, HeaderLimits{1 << 20, 4});
  EXPECT_EQ(s.fields.size(), 4u);
  EXPECT_TRUE(s.truncated);
  EXPECT_FALSE(s.has_separator);
  EXPECT_EQ(m.substr(s.body_offset, 9), "X-N: 4\r\nX");
}

TEST(HeaderSectionTest, HeaderBytesBeyondTheBoundAreBody) {
  const std::string m = "A: 1\r\nB: " + std::string(100, 'x') + "\r\n\r\nbody\r\n";
  HeaderSection s = ParseHeaderSection(m, true, HeaderLimits{50, 100});
  EXPECT_THAT(Names(s), ElementsAre("A"));
  EXPECT_TRUE(s.truncated);
  EXPECT_EQ(s.body_offset, 6u);
}

TEST(HeaderSectionTest, SpoolBoundsTheHeaderOfAHugeMessage) {
  SpoolOptions options;
  options.memory_limit = 1024;
  options.header_limits.max_bytes = 2000;
  MessageSpool spool(options);
  ASSERT_THAT(spool.Append("A: 1\r\n"), IsOk());
  for (int i = 0; i < 100; ++i) ASSERT_THAT(spool.Append("X-Long: " + std::string(50, 'y') + "\r\n"), IsOk());
  ASSERT_THAT(spool.Append("\r\nbody\r\n"), IsOk());
  ASSERT_THAT(spool.Finish(), IsOk());
  EXPECT_TRUE(spool.header_section().truncated);
  EXPECT_LE(spool.header_section().end, 2000u);
  EXPECT_GT(spool.headers().size(), 10u);
}

TEST(HeaderSectionTest, ValidFieldNames) {
  EXPECT_TRUE(IsValidFieldName("X-Sluice-Filter"));
  EXPECT_FALSE(IsValidFieldName(""));
  EXPECT_FALSE(IsValidFieldName("Bad Name"));
  EXPECT_FALSE(IsValidFieldName("Colon:"));
  EXPECT_FALSE(IsValidFieldName("Line\r\nBreak"));
}

}  // namespace
}  // namespace sluice::filter_bridge
