// libFuzzer target for the ingest journal's record codec (collector/journal_codec.h): any bytes
// must decode without a crash or a sanitizer report, be refused with DataLoss, or decode to a
// task that re-encodes to exactly the same bytes (the encoding is canonical).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "collector/journal_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<maillens::collector::JournalTask> decoded =
      maillens::collector::DecodeJournalTask(input);
  if (!decoded.ok()) {
    if (!absl::IsDataLoss(decoded.status())) __builtin_trap();
    return 0;
  }
  std::string encoded;
  maillens::collector::EncodeJournalTask(*decoded, &encoded);
  if (encoded != input) __builtin_trap();
  return 0;
}
