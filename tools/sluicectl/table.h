// tools/sluicectl/table.h
//
// The table output format, for people: a header row in capitals, then rows, every column
// padded to its widest cell and separated by two spaces (like `postqueue -p`, `kubectl get`).
//
// Never: pads the last column (no trailing blanks); lets a cell break the layout (control
// characters, newlines and tabs are shown escaped).
#pragma once

#include <string>
#include <vector>

namespace sluice::ctl {

class Table {
 public:
  explicit Table(std::vector<std::string> header);

  // Short rows are filled with empty cells; long rows are an error in the caller (asserted).
  void AddRow(std::vector<std::string> cells);
  size_t rows() const { return rows_.size(); }

  // Every line ends in '\n'.
  std::string Render() const;

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

// A cell safe to print: control bytes become \n, \t, \xNN.
std::string SanitizeCell(const std::string& text);

// A block of lines safe to print (message headers come from the Internet): CRLF becomes LF,
// LF and tab stay, every other control byte (a terminal escape, a bare CR) becomes \xNN.
std::string SanitizeBlock(const std::string& text);

}  // namespace sluice::ctl
