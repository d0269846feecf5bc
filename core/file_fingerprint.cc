#include "core/file_fingerprint.h"

#include <algorithm>

namespace maillens::core {

uint64_t FileFingerprint(std::string_view first_bytes) {
  size_t nl = first_bytes.find('\n');
  std::string_view head = first_bytes.substr(0, std::min<size_t>(nl, kFingerprintBytes));
  // FNV-1a, 64 bit: stable across versions and machines, which std::hash is not.
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : head) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h & 0x7fffffffffffffffULL;  // fits SQLite's signed INTEGER
}

}  // namespace maillens::core
