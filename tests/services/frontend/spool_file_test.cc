// tests/services/frontend/spool_file_test.cc
//
// The speed_adjust spool file: unlinked as soon as it exists (no name is ever left behind),
// every appended byte read back in order in chunks, and a spool_dir that cannot be written
// is an error, not a crash.
//
// Never: leaves a file or directory behind.
#include "services/frontend/spool_file.h"

#include <dirent.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <string>

namespace sluice::frontend {
namespace {

int Entries(const std::string& dir) {
  int n = 0;
  DIR* d = ::opendir(dir.c_str());
  while (dirent* e = ::readdir(d)) {
    if (std::string(e->d_name) != "." && std::string(e->d_name) != "..") ++n;
  }
  ::closedir(d);
  return n;
}

TEST(SpoolFile, UnlinkedAtOnceAndReadBackInChunks) {
  char tmpl[] = "/tmp/sluice-fe-spool-XXXXXX";
  std::string dir = ::mkdtemp(tmpl);
  {
    auto f = SpoolFile::Create(dir);
    ASSERT_TRUE(f.ok()) << f.status();
    EXPECT_EQ(Entries(dir), 0);
    std::string all;
    for (int i = 0; i < 1000; ++i) {
      std::string piece = "line " + std::to_string(i) + "\r\n";
      ASSERT_TRUE(f->Append(piece).ok());
      all += piece;
    }
    EXPECT_EQ(f->size(), all.size());
    std::string back, chunk;
    for (uint64_t off = 0;; off += chunk.size()) {
      ASSERT_TRUE(f->ReadAt(off, 777, chunk).ok());
      if (chunk.empty()) break;
      back += chunk;
    }
    EXPECT_EQ(back, all);
    SpoolFile moved = *std::move(f);
    EXPECT_TRUE(moved.open());
    EXPECT_EQ(moved.size(), all.size());
  }
  EXPECT_EQ(::rmdir(dir.c_str()), 0) << "nothing left in the spool directory";
}

TEST(SpoolFile, MissingDirectoryIsAnError) {
  auto f = SpoolFile::Create("/nonexistent/sluice-spool");
  EXPECT_FALSE(f.ok());
}

}  // namespace
}  // namespace sluice::frontend
