// tests/tools/sluicectl/table_test.cc
//
// The table format: aligned columns, no trailing blanks, hostile cells escaped.
//
// Never: checks widths by eye; every expectation is the exact text.
#include "tools/sluicectl/table.h"

#include <gtest/gtest.h>

namespace sluice::ctl {
namespace {

TEST(TableTest, AlignsColumnsToTheWidestCell) {
  Table t({"REPLICA", "STATE", "SESSIONS"});
  t.AddRow({"10.0.0.5:9101", "SERVING", "3/100"});
  t.AddRow({"[::1]:9101", "DRAINING (sigterm)", "0/100"});
  EXPECT_EQ(t.Render(),
            "REPLICA        STATE               SESSIONS\n"
            "10.0.0.5:9101  SERVING             3/100\n"
            "[::1]:9101     DRAINING (sigterm)  0/100\n");
}

TEST(TableTest, NeverEndsALineWithBlanks) {
  Table t({"A", "B"});
  t.AddRow({"long value", ""});
  t.AddRow({"x"});  // short rows are filled
  for (const auto& line : {std::string("A           B"), std::string("long value"), std::string("x")}) {
    EXPECT_NE(t.Render().find(line + "\n"), std::string::npos) << t.Render();
  }
  EXPECT_EQ(t.Render().find(" \n"), std::string::npos);
}

TEST(TableTest, HeaderOnlyWhenNoRows) {
  Table t({"LIMIT", "VALUE"});
  EXPECT_EQ(t.rows(), 0u);
  EXPECT_EQ(t.Render(), "LIMIT  VALUE\n");
}

TEST(TableTest, EscapesControlCharactersSoACellCannotForgeARow) {
  Table t({"HELO", "N"});
  t.AddRow({"evil\nREPLICA  forged\t\x1b[31m", "1"});
  EXPECT_EQ(t.Render(), "HELO                             N\nevil\\nREPLICA  forged\\t\\x1B[31m  1\n");
}

TEST(TableTest, CountsUtf8CharactersNotBytes) {
  Table t({"NAME", "X"});
  t.AddRow({"r\xC3\xA9sum\xC3\xA9", "1"});  // résumé: 6 characters, 8 bytes
  t.AddRow({"abcdef", "2"});
  EXPECT_EQ(t.Render(), "NAME    X\nr\xC3\xA9sum\xC3\xA9  1\nabcdef  2\n");
}

TEST(TableTest, BlocksKeepLinesButNotTerminalEscapes) {
  EXPECT_EQ(SanitizeBlock("Subject: hi\r\nX-Evil: \x1b]0;owned\x07\tend\rbare\r\n"),
            "Subject: hi\nX-Evil: \\x1B]0;owned\\x07\tend\\x0Dbare\n");
}

}  // namespace
}  // namespace sluice::ctl
