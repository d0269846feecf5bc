#include "core/queue_id.h"

namespace maillens::core {
namespace {

// Postfix encodes long queue IDs with digits and the consonants of both cases (base 52);
// the inode part after the 'z' separator uses base 51 (no 'z').
bool IsLongIdChar(char c) {
  if (c >= '0' && c <= '9') return true;
  char lower = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  if (lower < 'a' || lower > 'z') return false;
  return lower != 'a' && lower != 'e' && lower != 'i' && lower != 'o' && lower != 'u';
}

bool IsUpperHex(char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'); }

}  // namespace

QueueIdForm ClassifyQueueId(std::string_view text) {
  if (text == "NOQUEUE") return QueueIdForm::kNoQueue;
  if (text.size() >= 5 && text.size() <= 24) {
    bool hex = true;
    for (char c : text) hex = hex && IsUpperHex(c);
    if (hex) return QueueIdForm::kShort;
  }
  // Long form: 6 seconds digits + 4 microsecond digits, 'z', then the inode.
  constexpr size_t kSeparator = 10;
  if (text.size() < kSeparator + 2 || text.size() > 32 || text[kSeparator] != 'z') {
    return QueueIdForm::kNone;
  }
  for (size_t i = 0; i < text.size(); ++i) {
    if (i == kSeparator) continue;
    if (!IsLongIdChar(text[i])) return QueueIdForm::kNone;
    if (i > kSeparator && text[i] == 'z') return QueueIdForm::kNone;
  }
  return QueueIdForm::kLong;
}

}  // namespace maillens::core
