// tests/services/reinject/queue/disk_space_test.cc -- free space for the admission check is
// read from the file system once per interval, not per message, and what the queue writes
// in between is taken off the figure.
#include "services/reinject/queue/disk_space.h"

#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "lib/status/status_matchers.h"
#include "tests/services/reinject/testing/queue_test_support.h"

namespace sluice::reinject {
namespace {

using ::sluice::reinject::testing::TempDir;
using ::sluice::testing::IsOk;

class DiskSpaceTest : public ::testing::Test {
 protected:
  DiskSpaceTest() : fd_(::open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) {}
  ~DiskSpaceTest() override { ::close(fd_); }
  TempDir dir_;
  int fd_;
};

TEST_F(DiskSpaceTest, ReadsTheFileSystemOncePerInterval) {
  DiskSpace space(fd_, absl::Hours(1));
  for (int i = 0; i < 100; ++i) ASSERT_THAT(space.FreeBytes(), IsOk());
  EXPECT_EQ(space.reads(), 1u);
  ASSERT_THAT(space.Refresh(), IsOk());
  EXPECT_EQ(space.reads(), 2u);
}

TEST_F(DiskSpaceTest, WritesSinceTheLastReadAreTakenOff) {
  DiskSpace space(fd_, absl::Hours(1));
  auto before = space.FreeBytes();
  ASSERT_THAT(before, IsOk());
  ASSERT_GT(*before, 2000000u);
  space.Wrote(1000000);
  auto after = space.FreeBytes();
  ASSERT_THAT(after, IsOk());
  EXPECT_EQ(*before - *after, 1000000u);
  space.Wrote(*after + 1);  // more than is left: none, never a wrap-around
  EXPECT_EQ(*space.FreeBytes(), 0u);
}

TEST_F(DiskSpaceTest, AStaleFigureIsReadAgain) {
  DiskSpace space(fd_, absl::ZeroDuration());
  ASSERT_THAT(space.FreeBytes(), IsOk());
  ASSERT_THAT(space.FreeBytes(), IsOk());
  EXPECT_EQ(space.reads(), 2u);
}

TEST(DiskSpaceErrorTest, AnUnreadableFileSystemIsAnError) {
  DiskSpace space(-1, absl::Seconds(1));
  EXPECT_FALSE(space.FreeBytes().ok());
}

}  // namespace
}  // namespace sluice::reinject
