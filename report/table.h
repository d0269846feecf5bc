// Output for people and programs: an aligned table with optional colour, or CSV. Cells are
// text; colour is a property of a cell so widths stay right. Thread-compatible.
#ifndef MAILLENS_REPORT_TABLE_H_
#define MAILLENS_REPORT_TABLE_H_

#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

namespace maillens::report {

enum class Color { kNone, kRed, kGreen, kYellow, kDim, kBold };

struct Cell {
  std::string text;
  Color color = Color::kNone;
};

class Table {
 public:
  explicit Table(std::vector<std::string> header) : header_(std::move(header)) {}
  void AddRow(std::vector<Cell> row) { rows_.push_back(std::move(row)); }
  size_t rows() const { return rows_.size(); }

  // Aligned columns for a person; cells wider than `max_width` are cut with "…". Colour only
  // if `color`. Cells often hold text from log lines: control characters and bytes that are
  // not UTF-8 are shown escaped (EscapeControls), terminal or not.
  void PrintText(FILE* out, bool color, size_t max_width = 48) const;
  // RFC 4180 CSV with a header row, for programs: cells keep their bytes.
  void PrintCsv(FILE* out) const;

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<Cell>> rows_;
};

// Display width of UTF-8 text: one column per code point (good enough for log text).
size_t DisplayWidth(std::string_view s);

// `s` cut to `max_width` columns, ending in "…" when something was cut.
std::string CutToWidth(const std::string& s, size_t max_width);

// `text` wrapped in the terminal codes of `color` when `enabled`, else `text` as is.
std::string Paint(const std::string& text, Color color, bool enabled);

// The colour a delivery status is shown in.
Color StatusColor(const std::string& status);

// True when output to `out` should be coloured: a terminal, and NO_COLOR unset.
bool UseColor(FILE* out);

}  // namespace maillens::report

#endif  // MAILLENS_REPORT_TABLE_H_
