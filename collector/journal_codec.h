// The record codec of the collector's ingest journal (collector/ingest_journal.h): what the
// writer journals for one accepted batch or stream event, as bytes that an indexer decodes
// later, possibly in another process after a crash. The encoding is therefore self-contained
// (no pointers, no schema outside this file) and stable across builds.
//
// Layout, version 1. Integers are LEB128 varints (signed ones zigzag-encoded first), a string
// is a varint length then its bytes (any bytes: NUL, invalid UTF-8, megabytes), a bool or a
// presence byte is one byte 0 or 1, and every repeated thing is preceded by its count:
//
//   u8 version (1)
//   JournalTask   count lines { host*, file_path*, fingerprint, offset, zz time_us, raw }
//                 host
//                 count host_names { string }
//                 present site [SiteUpdate]
//   SiteUpdate    host, zz now_us, session (0 none, 1 connected, 2 disconnected),
//                 role, version, count addresses { string }, bool batch,
//                 count gaps { path, fingerprint, from_offset, present to_offset [to_offset],
//                              reason, detail, zz noticed_us }
//                 count progress { path, fingerprint, size, read_offset, acked_offset }
//                 zz newest_event_us
//                 count committed_end { fingerprint, end }   (fingerprints strictly rising)
//                 present queue [QueueSnapshot]
//   QueueSnapshot zz taken_us, error,
//                 count messages { queue_name, queue_id, instance, zz arrival_us, zz size,
//                                  sender, bool forced_expire,
//                                  count recipients { address, delay_reason } }
//
// (*: varint 0 when the same as the previous line's, the first line's previous being "";
// else the length + 1 and the bytes. A batch names its host and file once.)
//
// Any change to this layout, however small, needs a new version byte: journals written by an
// older build are replayed by a newer one, and the decoder rejects a version it does not know
// (with a message naming it) rather than misreading the bytes.
//
// Thread-safety: the functions are pure and may be called from any thread.
#ifndef MAILLENS_COLLECTOR_JOURNAL_CODEC_H_
#define MAILLENS_COLLECTOR_JOURNAL_CODEC_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "store/site_state.h"
#include "store/store.h"

namespace maillens::collector {

// What the collector's writer journals for one accepted batch or one stream event.
struct JournalTask {
  std::vector<store::LineRecord> lines;
  std::string host;                     // the announcing host, when host_names is set
  std::vector<std::string> host_names;  // AgentHello addresses and aliases to register
  std::optional<store::SiteUpdate> site;
};

// The version byte EncodeJournalTask writes, the only one DecodeJournalTask reads.
inline constexpr unsigned char kJournalCodecVersion = 1;

// Appends the encoding of `task` to *out (so one buffer can be reused); what *out held before
// is kept.
void EncodeJournalTask(const JournalTask& task, std::string* out);

// Decodes one encoding, which must span all of `data`. DataLoss with a short reason on
// anything malformed: truncated, an unknown version, a count or length past the end, trailing
// bytes, an enum or bool out of range. Never crashes, and allocates no more than `data`
// justifies, whatever the bytes say.
absl::StatusOr<JournalTask> DecodeJournalTask(std::string_view data);

}  // namespace maillens::collector

#endif  // MAILLENS_COLLECTOR_JOURNAL_CODEC_H_
