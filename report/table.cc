#include "report/table.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include "core/escape.h"

namespace maillens::report {

size_t DisplayWidth(std::string_view s) {
  size_t w = 0;
  for (unsigned char c : s) w += (c & 0xC0) != 0x80;
  return w;
}

std::string CutToWidth(const std::string& s, size_t max_width) {
  if (DisplayWidth(s) <= max_width) return s;
  std::string out;
  size_t w = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = s[i];
    if ((c & 0xC0) != 0x80) {
      if (w + 1 >= max_width) break;
      ++w;
    }
    out.push_back(s[i]);
  }
  while (!out.empty() && (static_cast<unsigned char>(out.back()) & 0xC0) == 0xC0) out.pop_back();
  return out + "\xE2\x80\xA6";  // …
}

namespace {

const char* Code(Color c) {
  switch (c) {
    case Color::kRed:
      return "\x1b[31m";
    case Color::kGreen:
      return "\x1b[32m";
    case Color::kYellow:
      return "\x1b[33m";
    case Color::kDim:
      return "\x1b[2m";
    case Color::kBold:
      return "\x1b[1m";
    case Color::kNone:
      break;
  }
  return "";
}

std::string CsvField(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  return out + "\"";
}

}  // namespace

void Table::PrintText(FILE* out, bool color, size_t max_width) const {
  // Measured and cut as shown: an escaped ESC ("\x1b") takes four columns.
  auto shown = [&](const std::string& text) {
    return CutToWidth(core::EscapeControls(text), max_width);
  };
  std::vector<size_t> widths(header_.size());
  for (size_t i = 0; i < header_.size(); ++i) widths[i] = DisplayWidth(shown(header_[i]));
  for (const auto& row : rows_) {
    for (size_t i = 0; i < row.size() && i < widths.size(); ++i) {
      widths[i] = std::max(widths[i], DisplayWidth(shown(row[i].text)));
    }
  }
  auto print_row = [&](const std::vector<Cell>& row, bool header) {
    std::string line;
    for (size_t i = 0; i < widths.size(); ++i) {
      std::string text = i < row.size() ? shown(row[i].text) : "";
      Color c = header ? Color::kBold : (i < row.size() ? row[i].color : Color::kNone);
      bool last = i + 1 == widths.size();
      line += Paint(text, c, color);
      if (!last) line += std::string(widths[i] - DisplayWidth(text) + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    line.push_back('\n');
    std::fwrite(line.data(), 1, line.size(), out);
  };
  std::vector<Cell> head;
  for (const auto& h : header_) head.push_back(Cell{h});
  print_row(head, true);
  for (const auto& row : rows_) print_row(row, false);
}

void Table::PrintCsv(FILE* out) const {
  std::string line;
  for (size_t i = 0; i < header_.size(); ++i) line += (i ? "," : "") + CsvField(header_[i]);
  line.push_back('\n');
  for (const auto& row : rows_) {
    for (size_t i = 0; i < row.size(); ++i) line += (i ? "," : "") + CsvField(row[i].text);
    line.push_back('\n');
  }
  std::fwrite(line.data(), 1, line.size(), out);
}

std::string Paint(const std::string& text, Color color, bool enabled) {
  if (!enabled || color == Color::kNone) return text;
  return Code(color) + text + "\x1b[0m";
}

Color StatusColor(const std::string& status) {
  if (status == "sent" || status == "delivered") return Color::kGreen;
  if (status == "deferred" || status == "held") return Color::kYellow;
  if (status == "bounced" || status == "expired" || status == "rejected" || status == "discarded" ||
      status == "undeliverable") {
    return Color::kRed;
  }
  return Color::kNone;
}

bool UseColor(FILE* out) {
  const char* no_color = std::getenv("NO_COLOR");
  return isatty(fileno(out)) == 1 && (no_color == nullptr || *no_color == '\0');
}

}  // namespace maillens::report
