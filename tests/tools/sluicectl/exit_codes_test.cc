// tests/tools/sluicectl/exit_codes_test.cc
//
// The exit-code contract: each gRPC status alone, and the fold over several replicas
// (partial failure 1, token refused 4, nobody reachable 5).
//
// Never: needs a server.
#include "tools/sluicectl/exit_codes.h"

#include <gtest/gtest.h>

namespace sluice::ctl {
namespace {

grpc::Status S(grpc::StatusCode code) { return code == grpc::StatusCode::OK ? grpc::Status::OK : grpc::Status(code, "x"); }

TEST(ExitCodesTest, NumbersAreTheDocumentedOnes) {
  EXPECT_EQ(kExitOk, 0);
  EXPECT_EQ(kExitCallFailed, 1);
  EXPECT_EQ(kExitUsage, 2);
  EXPECT_EQ(kExitNotFound, 3);
  EXPECT_EQ(kExitPermissionDenied, 4);
  EXPECT_EQ(kExitUnavailable, 5);
}

TEST(ExitCodesTest, MapsSingleStatusCodes) {
  EXPECT_EQ(ExitCodeForStatus(grpc::StatusCode::OK), kExitOk);
  EXPECT_EQ(ExitCodeForStatus(grpc::StatusCode::NOT_FOUND), kExitNotFound);
  EXPECT_EQ(ExitCodeForStatus(grpc::StatusCode::PERMISSION_DENIED), kExitPermissionDenied);
  EXPECT_EQ(ExitCodeForStatus(grpc::StatusCode::UNAUTHENTICATED), kExitPermissionDenied);
  EXPECT_EQ(ExitCodeForStatus(grpc::StatusCode::UNAVAILABLE), kExitUnavailable);
  EXPECT_EQ(ExitCodeForStatus(grpc::StatusCode::DEADLINE_EXCEEDED), kExitUnavailable);
  EXPECT_EQ(ExitCodeForStatus(grpc::StatusCode::INVALID_ARGUMENT), kExitCallFailed);
  EXPECT_EQ(ExitCodeForStatus(grpc::StatusCode::INTERNAL), kExitCallFailed);
  EXPECT_EQ(ExitCodeForStatus(grpc::StatusCode::UNIMPLEMENTED), kExitCallFailed);
}

TEST(ExitCodesTest, AllOkIsZero) {
  EXPECT_EQ(CombineReplicaStatuses({S(grpc::StatusCode::OK), S(grpc::StatusCode::OK)}), kExitOk);
}

TEST(ExitCodesTest, NoReplicaAtAllIsUnavailable) { EXPECT_EQ(CombineReplicaStatuses({}), kExitUnavailable); }

TEST(ExitCodesTest, NoReplicaReachableIsUnavailable) {
  EXPECT_EQ(CombineReplicaStatuses({S(grpc::StatusCode::UNAVAILABLE), S(grpc::StatusCode::DEADLINE_EXCEEDED)}),
            kExitUnavailable);
}

TEST(ExitCodesTest, OneReplicaDownIsPartialFailure) {
  EXPECT_EQ(CombineReplicaStatuses({S(grpc::StatusCode::OK), S(grpc::StatusCode::UNAVAILABLE)}), kExitCallFailed);
  EXPECT_EQ(CombineReplicaStatuses({S(grpc::StatusCode::OK), S(grpc::StatusCode::INTERNAL)}), kExitCallFailed);
}

TEST(ExitCodesTest, RefusedTokenWinsOverOtherFailures) {
  EXPECT_EQ(CombineReplicaStatuses({S(grpc::StatusCode::UNAVAILABLE), S(grpc::StatusCode::PERMISSION_DENIED)}),
            kExitPermissionDenied);
  EXPECT_EQ(CombineReplicaStatuses({S(grpc::StatusCode::UNAUTHENTICATED), S(grpc::StatusCode::UNAUTHENTICATED)}),
            kExitPermissionDenied);
  EXPECT_EQ(CombineReplicaStatuses({S(grpc::StatusCode::OK), S(grpc::StatusCode::PERMISSION_DENIED)}),
            kExitPermissionDenied);
}

}  // namespace
}  // namespace sluice::ctl
