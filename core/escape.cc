#include "core/escape.h"

namespace maillens::core {

namespace {

// Length of the well-formed UTF-8 sequence at the start of `s` (Unicode table 3-7: no overlong
// forms, no surrogates, nothing above U+10FFFF), or 0 when it does not start one.
size_t Utf8SequenceLength(std::string_view s) {
  auto u = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  auto in = [&](size_t i, unsigned char lo, unsigned char hi) {
    return i < s.size() && u(i) >= lo && u(i) <= hi;
  };
  const unsigned char b = u(0);
  if (b < 0x80) return 1;
  if (b >= 0xC2 && b <= 0xDF) return in(1, 0x80, 0xBF) ? 2 : 0;
  if (b >= 0xE0 && b <= 0xEF) {
    const unsigned char lo = b == 0xE0 ? 0xA0 : 0x80;
    const unsigned char hi = b == 0xED ? 0x9F : 0xBF;
    return in(1, lo, hi) && in(2, 0x80, 0xBF) ? 3 : 0;
  }
  if (b >= 0xF0 && b <= 0xF4) {
    const unsigned char lo = b == 0xF0 ? 0x90 : 0x80;
    const unsigned char hi = b == 0xF4 ? 0x8F : 0xBF;
    return in(1, lo, hi) && in(2, 0x80, 0xBF) && in(3, 0x80, 0xBF) ? 4 : 0;
  }
  return 0;
}

void AppendHexEscape(unsigned char u, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->append("\\x");
  out->push_back(kHex[u >> 4]);
  out->push_back(kHex[u & 0xF]);
}

}  // namespace

std::string EscapeControls(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    const unsigned char u = static_cast<unsigned char>(text[i]);
    const size_t n = Utf8SequenceLength(text.substr(i));
    // U+0080..U+009F encoded in UTF-8 (C2 80..C2 9F) are the C1 controls; a terminal may act
    // on them as on a stray byte 0x80..0x9f (0x9b is CSI, like ESC [).
    const bool c1 = n == 2 && u == 0xC2 && static_cast<unsigned char>(text[i + 1]) < 0xA0;
    if (n == 1 && ((u < 0x20 && u != '\t') || u == 0x7f)) {
      AppendHexEscape(u, &out);
      i += 1;
    } else if (n == 0) {
      AppendHexEscape(u, &out);  // one byte; what follows is looked at afresh
      i += 1;
    } else if (c1) {
      AppendHexEscape(u, &out);
      AppendHexEscape(static_cast<unsigned char>(text[i + 1]), &out);
      i += 2;
    } else {
      out.append(text.substr(i, n));
      i += n;
    }
  }
  return out;
}

}  // namespace maillens::core
