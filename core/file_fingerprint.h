// The identity of a file's content: a hash of its first line. The agent names the files it
// ships by it and the collector keys stored lines by (host, fingerprint, byte offset), so both
// must compute it the same way; this is the one definition. Pure function, no I/O.
#ifndef MAILLENS_CORE_FILE_FINGERPRINT_H_
#define MAILLENS_CORE_FILE_FINGERPRINT_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace maillens::core {

// How many leading bytes of the first line the fingerprint covers. A first line longer than
// this is identified by its first kFingerprintBytes bytes.
inline constexpr size_t kFingerprintBytes = 1024;

// FNV-1a (64 bit, top bit cleared so it fits SQLite's signed INTEGER) of `first_bytes` up to
// its first '\n', at most kFingerprintBytes bytes. A rotated file, its gzipped copy and the
// live file it came from share it; a file with a different first line gets another one.
// `first_bytes` may be the first line without its '\n' or any longer prefix of the file.
uint64_t FileFingerprint(std::string_view first_bytes);

}  // namespace maillens::core

#endif  // MAILLENS_CORE_FILE_FINGERPRINT_H_
