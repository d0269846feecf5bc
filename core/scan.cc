#include "core/scan.h"

namespace maillens::core {
namespace {

// Position of `key=` at a word boundary, or npos.
size_t FindKey(std::string_view text, std::string_view key) {
  size_t pos = 0;
  while (true) {
    pos = text.find(key, pos);
    if (pos == std::string_view::npos) return pos;
    size_t after = pos + key.size();
    bool boundary = pos == 0 || text[pos - 1] == ' ' || text[pos - 1] == ',';
    if (boundary && after < text.size() && text[after] == '=') {
      return after + 1;
    }
    pos += 1;
  }
}

}  // namespace

std::string_view FindValue(std::string_view text, std::string_view key) {
  size_t start = FindKey(text, key);
  if (start == std::string_view::npos) return {};
  std::string_view rest = text.substr(start);
  if (!rest.empty() && rest[0] == '<') {
    // The value ends at a '>' followed by a separator; addresses may hold '>' or ',' when
    // quoted, so take the first '>' that is followed by ',', ' ' or the end.
    for (size_t i = 1; i < rest.size(); ++i) {
      if (rest[i] != '>') continue;
      if (i + 1 == rest.size() || rest[i + 1] == ',' || rest[i + 1] == ' ' || rest[i + 1] == ';' ||
          rest[i + 1] == ':') {
        return rest.substr(1, i - 1);
      }
    }
    return rest.substr(1);  // unterminated: everything after '<'
  }
  size_t end = rest.find_first_of(", ");
  return rest.substr(0, end);
}

std::string_view FindValueUntil(std::string_view text, std::string_view key,
                                std::string_view stop) {
  size_t start = FindKey(text, key);
  if (start == std::string_view::npos) return {};
  std::string_view rest = text.substr(start);
  size_t end = rest.find(stop);
  return rest.substr(0, end);
}

bool SplitHostAddress(std::string_view text, HostAddress* out) {
  if (text.empty()) return false;
  size_t open = text.find('[');
  if (open == std::string_view::npos) {
    out->host = text;
    return true;
  }
  size_t close = text.find(']', open);
  if (close == std::string_view::npos) {
    out->host = text;
    return true;
  }
  out->host = text.substr(0, open);
  out->ip = text.substr(open + 1, close - open - 1);
  if (close + 1 < text.size() && text[close + 1] == ':') {
    out->port = text.substr(close + 2);
  }
  return true;
}

bool ConsumeHostAddress(std::string_view* s, std::string_view* whole, HostAddress* out) {
  std::string_view t = *s;
  size_t open = t.find('[');
  if (open == std::string_view::npos) return false;
  size_t space = t.find(' ');
  if (space != std::string_view::npos && space < open) return false;
  size_t close = t.find(']', open);
  if (close == std::string_view::npos) return false;
  size_t end = close + 1;
  if (end < t.size() && t[end] == ':' && end + 1 < t.size() && IsDigit(t[end + 1])) {
    ++end;
    while (end < t.size() && IsDigit(t[end])) ++end;
  }
  std::string_view w = t.substr(0, end);
  SplitHostAddress(w, out);
  if (whole != nullptr) *whole = w;
  s->remove_prefix(end);
  return true;
}

bool ConsumeNumber(std::string_view* s, std::string_view* digits) {
  size_t n = 0;
  while (n < s->size() && IsDigit((*s)[n])) ++n;
  if (n == 0) return false;
  *digits = s->substr(0, n);
  s->remove_prefix(n);
  return true;
}

bool SplitOnce(std::string_view* s, std::string_view sep, std::string_view* head) {
  size_t pos = s->find(sep);
  if (pos == std::string_view::npos) return false;
  *head = s->substr(0, pos);
  s->remove_prefix(pos + sep.size());
  return true;
}

}  // namespace maillens::core
