// The collector's ingest journal: a durable, append-only queue of opaque records between the
// ingest thread, which appends each accepted batch, fdatasyncs and only then acknowledges it,
// and the indexer thread, which reads the records in order, applies them to the store
// (re-applying a record must be harmless) and releases them. After a crash every record past
// the released watermark is replayed, so nothing acknowledged is ever lost. The journal does
// not bound itself: the ingest side waits while pending_bytes() is over its limit.
//
// On disk, in options.dir:
//   NNNNNNNNNNNNNNNNNNNN.journal  segments, named by the first seq they hold (%020llu, so that
//                                 name order is seq order); records are appended to the last
//                                 one, and a new one is started once it reaches segment_bytes.
//   released                      the released watermark, "maillens-journal-released v1 SEQ\n",
//                                 replaced atomically (temp file, fsync, rename, fsync dir).
//   LOCK                          flock()ed while open: one process per journal.
// A record is
//   [u32 payload length LE][u32 crc32 over the 8 seq bytes then the payload][u64 seq LE][payload]
// with seqs consecutive from the segment's name on, and payloads of at most kMaxRecordBytes
// (a guard against garbage lengths).
//
// Recovery (Open): only the tail of the last segment can be torn, since every Append is synced
// before the next one starts. A bad record there (short header, absurd length, short payload,
// bad CRC) is cut off with everything after it: it was never acknowledged. A bad record that is
// followed by a good one, a record with a good CRC but the wrong seq, and any bad record in an
// earlier segment are corruption of acknowledged data: Open fails with DataLoss naming the file
// and offset. (After a power loss the unsynced tail may have reached the disk out of order and
// look like such corruption; the message says how to cut the file by hand.)
//
// Thread-safety: Append is called from one thread at a time (the ingest thread); Read and
// Release from another (the indexer), concurrently with Append (they are serialized with each
// other); the const getters from any thread. Append does not hold the lock across its write
// and fdatasync, so Read never waits for a sync; a record becomes visible to Read only once
// the fdatasync of its Append has completed.
#ifndef MAILLENS_COLLECTOR_INGEST_JOURNAL_H_
#define MAILLENS_COLLECTOR_INGEST_JOURNAL_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/mutex.h"

namespace maillens::collector {

struct JournalOptions {
  std::string dir;                    // created if missing (e.g. DATA_DIR/journal)
  uint64_t segment_bytes = 64 << 20;  // start a new segment file past this size
  bool sync = true;                   // fdatasync in Append (tests/benchmarks may turn off)
};

struct JournalRecord {
  uint64_t seq = 0;
  std::string payload;
};

class IngestJournal {
 public:
  static constexpr uint32_t kMaxRecordBytes = 1u << 30;  // 1 GiB
  static constexpr size_t kHeaderBytes = 16;

  // Opens or creates the journal in options.dir and recovers from a crash (see above): cuts a
  // torn tail off the last segment (and fsyncs), fails with DataLoss on corruption before it,
  // and loads the released watermark. FailedPrecondition while it is open elsewhere (another
  // process, or another IngestJournal in this one).
  static absl::StatusOr<std::unique_ptr<IngestJournal>> Open(const JournalOptions& options);

  ~IngestJournal();
  IngestJournal(const IngestJournal&) = delete;
  IngestJournal& operator=(const IngestJournal&) = delete;

  // Appends `payloads` as consecutive records (seq = last_seq()+1, ...) with one write and one
  // fdatasync (group commit) and returns the seq of the last one (last_seq() when `payloads`
  // is empty). Starts a new segment first when the current one is at or past segment_bytes.
  // On failure nothing of this call remains (the segment is cut back to its size before) and
  // the error names what failed and the path: ResourceExhausted when the disk is full
  // (ENOSPC, EDQUOT, EFBIG), Unavailable for other I/O errors, InvalidArgument for a payload
  // over kMaxRecordBytes. If even the cut fails, the journal refuses further appends (it has
  // to be reopened, which recovers).
  absl::StatusOr<uint64_t> Append(const std::vector<std::string_view>& payloads);

  // Appends to *out the records with seq > after_seq, in order: at least one if any exists
  // (even one larger than max_bytes), then more while the total payload stays <= max_bytes.
  // Nothing to read is OK with nothing appended. Reading on from the last seq returned
  // continues from a remembered position; any other after_seq scans the headers of the
  // segment holding after_seq+1. DataLoss if a record fails its CRC.
  absl::Status Read(uint64_t after_seq, size_t max_bytes, std::vector<JournalRecord>* out);

  // Declares every record with seq <= `seq` durably applied: persists the watermark, then
  // deletes the segments whose records are all <= seq (never the one appended to). Releasing
  // at or below released_seq() does nothing; past last_seq() is InvalidArgument.
  absl::Status Release(uint64_t seq);

  uint64_t last_seq() const;         // 0 when the journal never held a record
  uint64_t released_seq() const;     // 0 initially
  uint64_t pending_bytes() const;    // header + payload bytes of the records after released_seq
  uint64_t pending_records() const;  // records after released_seq
  size_t segment_count() const;      // segment files on disk
  const std::string& dir() const { return options_.dir; }

 private:
  // One segment file. first_seq, path and fd never change; size and last_seq (what Read may
  // see) are guarded by mu_. Segments are destroyed only by Release (and the destructor), which
  // is serialized with Read, so Read may use a Segment* outside mu_.
  struct Segment {
    uint64_t first_seq = 0;
    std::string path;
    int fd = -1;            // owned; O_RDWR for the last segment, O_RDONLY for the others at Open
    uint64_t size = 0;      // bytes of complete, synced records
    uint64_t last_seq = 0;  // first_seq - 1 while empty
    ~Segment();
  };
  // Where the sequential reader stopped: the next record after `seq` starts at `offset` of
  // the segment named `segment_first_seq`.
  struct Cursor {
    bool valid = false;
    uint64_t seq = 0;
    uint64_t segment_first_seq = 0;
    uint64_t offset = 0;
  };

  IngestJournal(JournalOptions options, int lock_fd);
  absl::Status Recover();
  absl::Status LoadReleased();
  absl::Status WriteReleased(uint64_t seq);
  absl::Status StartSegment(uint64_t first_seq);
  std::string SegmentPath(uint64_t first_seq) const;

  const JournalOptions options_;
  const int lock_fd_;  // owned; holds the flock

  // Writer-side state, touched only by Append (one thread at a time).
  Segment* active_ = nullptr;  // the last segment, once Open or Append created it
  uint64_t active_bytes_ = 0;  // its size as Append knows it (== active_->size between calls)
  absl::Status broken_;        // set when a failed append could not be cut back
  std::string buffer_;         // the encoded records of one Append, reused

  core::Mutex reader_mu_;  // serializes Read and Release
  Cursor cursor_ ABSL_GUARDED_BY(reader_mu_);

  mutable core::Mutex mu_;
  std::vector<std::unique_ptr<Segment>> segments_ ABSL_GUARDED_BY(mu_);  // by first_seq
  uint64_t last_seq_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t released_seq_ ABSL_GUARDED_BY(mu_) = 0;
  // (seq, header + payload bytes) of each record after released_seq_, oldest first.
  std::deque<std::pair<uint64_t, uint64_t>> pending_ ABSL_GUARDED_BY(mu_);
  uint64_t pending_bytes_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace maillens::collector

#endif  // MAILLENS_COLLECTOR_INGEST_JOURNAL_H_
