// The store: every maillog line of every host, kept byte for byte, full-text indexed, and the
// message traces the correlator builds from them.
//
// Layout of a data directory:
//   catalog.db          hosts and their names, files, partitions, correlation state
//   days/YYYYMMDD.db    one partition per UTC day: events + FTS5 index over the raw lines
//   days/YYYYMMDD.fts.db the FTS5 index of a partition created since it moved to a file of
//                        its own (store/schema.h, kFtsFileFeature)
//   archive/, cache/    days moved out of the hot window (store/retention.h)
//
// Idempotent: a line is identified by (host, file fingerprint, byte offset); appending it again
// is a no-op, so re-importing a file, overlapping files, or an agent resending after a crash
// never stores a line twice.
//
// Durability: Append returns after the lines are committed (WAL, synchronous=FULL). The
// correlation of committed lines happens in a second transaction on the catalog; a watermark
// per partition (partitions.correlated_id) records how far it got, and Open() finishes any
// correlation a crash interrupted, so traces never miss a stored line.
//
// The full-text index of a partition with a side file is written after its lines, by the
// same Append or on a thread behind it; it records how far it got (fts_state.indexed_id), and
// opening the partition for writing indexes whatever a crash left out.
//
// Thread-safety: Append and the correlator run on the caller's thread and must not be called
// concurrently (the collector funnels them through one writer thread); with
// StoreOptions::correlate_behind the correlator and the side files' indexing run on threads
// of the store's own, up to StoreOptions::behind_depth Appends behind, and are flushed
// before anything else touches them.
// Query methods open their own read connections and may run on other threads beside the
// writer.
#ifndef MAILLENS_STORE_STORE_H_
#define MAILLENS_STORE_STORE_H_

#include <cstdint>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "core/event.h"
#include "core/mutex.h"
#include "core/query_language.h"
#include "core/status_macros.h"
#include "store/behind_worker.h"
#include "store/correlator.h"
#include "store/site_state.h"
#include "store/sqlite.h"

namespace maillens::store {

// One line as it reaches the store.
struct LineRecord {
  std::string host;          // host name (the agent's, or the syslog host field on import)
  std::string file_path;     // where it was read (information only)
  uint64_t fingerprint = 0;  // identity of the file's content (core::FileFingerprint)
  uint64_t offset = 0;       // byte offset of the line in that file
  int64_t time_us = 0;       // UTC microseconds, resolved by the reader (year, zone)
  std::string raw;           // the line without '\n'
};

struct AppendStats {
  uint64_t stored = 0;
  uint64_t duplicates = 0;
  uint64_t unparsed = 0;  // stored, but the parser did not understand them
  // Kept in the catalog, not stored yet: their day is archived and the archive cannot be
  // trusted (Store::Append). Stored by a later Append once it can be.
  uint64_t held = 0;
};

// A stored line with what the store knows of it.
struct StoredLine {
  int64_t time_us = 0;
  std::string host;
  std::string raw;
  int64_t day = 0;       // partition (YYYYMMDD)
  int64_t id = 0;        // row id within the partition
  std::string queue_id;  // as stored with the line; only filled by an `unchecked` search
};

// What to find. `terms` are parsed search-language conditions (core/query_language.h); the
// named fields below are shorthands for the common ones and are added to them. Free text
// goes to the FTS5 index; every term is checked on the parsed line.
struct SearchQuery {
  std::vector<std::string> words;  // every word must occur in the line
  std::vector<core::FieldTerm> terms;
  std::string from;
  std::string to;
  std::string host;
  std::string status;
  std::string queue_id;
  std::string message_id;
  int64_t since_us = INT64_MIN;
  int64_t until_us = INT64_MAX;
  size_t limit = 100;
  // Every line in the window that the full-text index (and the host filter) gives as a
  // candidate, with its queue ID, newest first: a superset of the matches, none parsed or
  // checked, no limit, no count. For callers that check candidates themselves and need all
  // of them (the per-message search's intersection of clauses).
  bool unchecked = false;
  // Lines oldest first (the first `limit` in time), not newest first.
  bool oldest_first = false;
};

// The query as the search language has it: the named shorthands folded into terms.
core::Query ToQuery(const SearchQuery& in);

struct SearchResult {
  std::vector<StoredLine> lines;      // newest first (oldest first if asked), at most limit
  uint64_t total = 0;                 // all matches in the window, so a cap is never silent
  bool total_is_lower_bound = false;  // counting stopped early: at least `total` match
  std::vector<std::string> notices;
};

// How a partition's full-text index holds addresses beside their words.
enum class AddressIndex {
  kWords,     // words only: an address is found as a phrase
  kCombined,  // plus one token per address, whatever its field (schema 3)
  kPerField,  // plus one token per address and field: from=, or to=/orig_to= (schema 4)
};

struct StoreOptions {
  std::string dir;
  bool read_only = false;
  // fsync every commit (the collector, whose acknowledgements promise durability). An import
  // turns it off: a crash of the machine may lose its last batches, and re-running it
  // restores them without duplicates.
  bool durable = true;
  // Called for each line Append stores (not for duplicates), on Append's thread, with the
  // parsed event (its views point into the line and die with the call). For metrics.
  std::function<void(const core::Event&)> on_stored_event;
  // Called each time new lines become durable, with how many: after a partition's
  // transaction commits, and once a new day's file is written (on the days' thread when it is
  // written behind). Unlike AppendStats it also counts the lines of an Append that then fails
  // (a later day, the index, a correlation), which its retry finds as duplicates: the count of
  // lines stored exactly once, whatever failed.
  std::function<void(uint64_t lines)> on_lines_committed;
  // Correlate on a thread of the store's own, behind Append: Append returns once its lines
  // are committed, while the correlation of the previous Append's lines finishes beside it
  // (an import: parsing and inserting the next lines overlaps correlating the last ones; the
  // collector's indexer: the same with its runs of batches, whose site updates commit with
  // their correlation). The full-text index of partitions with a side file is written on a
  // second thread the same way. Flush() waits for both; every other method flushes first.
  // An import (not durable) writes the files of new days on a third (Append).
  bool correlate_behind = false;
  // How many Appends those threads may be behind. More smooths out batches that take one
  // thread longer than another (an import). The collector's indexer needs 1: it releases a
  // run's journal records once the next Append has returned, which then means that the run
  // is wholly indexed and correlated.
  size_t behind_depth = 1;
  // Nice value of those threads (store/behind_worker.h, SetThreadNice): the collector's
  // indexing yields the CPU to acknowledging the agents' batches.
  int behind_nice = 0;
  // Tests: called on those threads as a job starts, with "days" (writing new days) or
  // "index" (indexing into side files), to hold a job back.
  std::function<void(std::string_view job)> on_behind_job;
};

class Store {
 public:
  static absl::StatusOr<std::unique_ptr<Store>> Open(const StoreOptions& options);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Stores `lines` (any order, any days), then correlates the new ones. Returns when both are
  // committed. On error nothing of the failing partition's transaction is kept, and the call
  // may be retried with the same lines. `sites`, in order, are recorded in the correlation's
  // catalog transaction (as RecordSite would, without a commit of their own).
  absl::StatusOr<AppendStats> Append(absl::Span<const LineRecord> lines,
                                     absl::Span<const SiteUpdate> sites = {});
  // Waits until the lines of every Append are correlated and full-text indexed
  // (StoreOptions::correlate_behind); the error, if either failed (the next Append then
  // correlates or indexes them from disk).
  absl::Status Flush();

  // Declares names and addresses under which `host` appears in other hosts' relay= fields.
  absl::Status AddHostNames(const std::string& host, const std::vector<std::string>& names);
  // Re-derives the links of every pending hop handed off at or after `since_us` (and undoes
  // loopback re-injections whose address a host now claims), as the correlator does on its
  // own for a recent window when hosts or names appear: after declaring names and addresses
  // for data stored earlier (`maillens relink`). Returns how many links the catalog gained.
  absl::StatusOr<int64_t> Relink(int64_t since_us);

  absl::StatusOr<SearchResult> Search(const SearchQuery& query);

  // The trace containing the message with queue ID or message-id `id` (the newest one when
  // several match). NotFound when nothing matches. `*matches`, when set, receives how many
  // traces `id` names (a queue ID Postfix reused, or one on several hosts).
  absl::StatusOr<Trace> GetTrace(const std::string& id, size_t* matches = nullptr);
  absl::StatusOr<Trace> TraceById(int64_t trace_id) {
    MAILLENS_RETURN_IF_ERROR(Flush());
    return correlator_->LoadTrace(trace_id);
  }
  // Every trace with a message starting in [since_us, until_us).
  absl::StatusOr<std::vector<Trace>> TracesIn(int64_t since_us, int64_t until_us);

  // The message instance of `queue_id` on `host` alive at `time_us`, if the correlator knows
  // it.
  absl::StatusOr<std::optional<MessageView>> MessageAt(const std::string& host,
                                                       const std::string& queue_id,
                                                       int64_t time_us);

  // The instance MessageAt finds (the newest of `queue_id` on `host` that began at or before
  // `time_us`) without loading it: only its id, trace id, host, queue ID and time span are
  // set, which is what MessageLines needs.
  absl::StatusOr<std::optional<MessageInfo>> InstanceAt(const std::string& host,
                                                        const std::string& queue_id,
                                                        int64_t time_us);
  // Every instance of the queues `queues` (host id, queue ID), whichever lives a reused ID
  // had: only id, trace id, host id, queue ID and first_us are set (what the catalog's index
  // messages_qid holds, so that no message row is read); last_us is first_us.
  absl::StatusOr<std::vector<MessageInfo>> InstancesOf(
      const std::vector<std::pair<int64_t, std::string>>& queues);
  // The queues (host id, queue ID) of every instance of the traces `trace_ids`, each with its
  // trace id.
  struct TraceQueue {
    int64_t trace_id = 0;
    int64_t host_id = 0;
    std::string queue_id;
  };
  absl::StatusOr<std::vector<TraceQueue>> QueuesOfTraces(const std::vector<int64_t>& trace_ids);
  // The queues in which `address` (lower case, exact) was seen as from= (target kFrom) or as
  // to= or orig_to= (kTo), per day, from each day's address_queues (schema.h); the days of the
  // window, newest first (oldest first with `oldest_first`). The window is applied by day
  // only, so it is a superset of the queues of the window's lines. nullopt when a day of the
  // window has no such table (a partition of an older maillens): read its lines instead.
  struct AddressQueue {
    int64_t day = 0;
    int64_t host_id = 0;
    std::string host;
    std::string queue_id;
  };
  absl::StatusOr<std::optional<std::vector<AddressQueue>>> AddressQueues(
      core::FieldTerm::Target target, const std::string& address, int64_t since_us,
      int64_t until_us, bool oldest_first);
  // The (host, queue ID) of every instance of trace `trace_id`.
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> TraceInstances(int64_t trace_id);

  // The raw lines of one message instance, in time order.
  absl::StatusOr<std::vector<StoredLine>> MessageLines(const MessageInfo& message);

  // Days held, oldest first. A read-only store (every query) includes archived days, which
  // Partition() reads from the archive cache; a writable one lists hot days only.
  // A read-only store lists the directories at most once a second (a search looks up the days
  // of every candidate message), so a day created meanwhile is seen up to a second late.
  std::vector<int64_t> Days() const;
  // Days this store has read from the archive so far, oldest first (for a note to the user).
  std::vector<int64_t> ArchivedDaysRead() const {
    return std::vector<int64_t>(archived_read_.begin(), archived_read_.end());
  }
  // The data directory (for the archive's notices, store/retention.h).
  const std::string& dir() const { return options_.dir; }

  // Lines stored in all partitions.
  absl::StatusOr<uint64_t> CountLines();

  // The site's state beside the lines (store/site_state.h). RecordSite stores what a
  // committed batch or a stream's start or end says about an agent, in one catalog
  // transaction; the collector's writer calls it after Append and before acknowledging.
  absl::Status RecordSite(const SiteUpdate& update);
  // At start: agents a previous process recorded as connected are offline since last seen.
  absl::Status CloseStaleAgentSessions();
  absl::StatusOr<SiteStatus> GetSiteStatus(int64_t now_us, size_t max_gaps, size_t max_offline);

  // --- Overlapping files and hosts (maillens import, maillens hosts) ---

  // Whether the catalog names host `name` (this store's view; the writer's thread).
  bool KnowsHost(const std::string& name) const { return host_ids_.count(name) != 0; }

  // Whether some host has a file with `fingerprint` (core::FileFingerprint). Writer's thread,
  // between Appends; it does not wait for the store's threads.
  absl::StatusOr<bool> FingerprintKnown(uint64_t fingerprint);

  // A stored line's time and bytes (LinesOfOtherFiles).
  struct TimedRaw {
    int64_t time_us = 0;
    std::string raw;
  };
  // The lines stored for `host` with a time in [since_us, until_us] from files whose
  // fingerprint is not `fingerprint`: what another file (an extract, a syslog server's copy)
  // already holds of the lines an import is about to store, which the (file, offset) identity
  // cannot see. Hot days only (an archived day is not read). Writer's thread, between
  // Appends: it reads through the writer's connections and does not wait for the store's
  // threads (only for a new day still being written). Cheap when the host has no other file:
  // one catalog query, no partition read.
  absl::StatusOr<std::vector<TimedRaw>> LinesOfOtherFiles(const std::string& host,
                                                          uint64_t fingerprint, int64_t since_us,
                                                          int64_t until_us);

  // A host as the store holds it (maillens hosts).
  struct HostSummary {
    std::string name;
    uint64_t lines = 0;    // in every day this store reads (a read-only store: archived too)
    int64_t first_us = 0;  // time of its first and last line; 0 when it has none
    int64_t last_us = 0;
    // Messages it received or made (smtpd, pickup, a bounce notice), each once: a content
    // filter's or local(8)'s re-injection on the host is the same message, not counted again.
    uint64_t messages = 0;
  };
  // Every host in the catalog, by name, with what the store holds of it.
  absl::StatusOr<std::vector<HostSummary>> Hosts();

  // What ForgetHost removed.
  struct ForgetStats {
    uint64_t lines = 0;
    uint64_t messages = 0;
    uint64_t links = 0;
  };
  // Removes host `name` from the hot days and the catalog: its lines (and their full-text
  // entries), message instances, recipients, links and pending hops to or from them, files,
  // names, agent state and queue snapshot, and the host itself. NotFound if no such host.
  // Writable store; the caller holds the data directory's lock (store/data_lock.h). The
  // archive is immutable (store/retention.h): a host with lines in an archived day is refused
  // (FailedPrecondition naming the days), nothing removed. Lines of traces that passed the
  // host stay with their other hops.
  absl::StatusOr<ForgetStats> ForgetHost(const std::string& name);

 private:
  explicit Store(StoreOptions options) : options_(std::move(options)) {}
  absl::Status Init();
  absl::StatusOr<Database*> Partition(int64_t day, bool create);
  // Writable store: writes a new day's partition and its side file from images of empty ones
  // (made once per store), the side file first, so a partition's side file exists.
  absl::Status CreatePartitionFiles(const std::string& partition_path);
  // Makes partition_image_, fts_image_ and new_day_image_ if they are not made yet.
  absl::Status MakeImages();
  // A day with no file yet (nor an archive, which PartitionSource restores): its partition as
  // an in-memory database made from new_day_image_ (one file, its full-text index inline),
  // for Append to fill and WriteNewDays to write whole. The day's later lines go through
  // Partition() as usual.
  struct NewDay {
    std::unique_ptr<Database> partition;
  };
  // NewDay for `day`, or nullopt when its partition has a file (or an open connection).
  absl::StatusOr<std::optional<NewDay>> StartNewDay(int64_t day);
  // Writes the partition of each new day (day -> NewDay), all at once (WriteFilesAtomic).
  // The days' databases are spent: not to be used after.
  absl::Status WriteNewDays(const std::vector<std::pair<int64_t, NewDay>>& days);
  // A connection to partition `day` that sees its full-text index too: Partition(day), or for
  // a writable store's partition with a side file, a read connection with the file attached
  // (the writer's connection leaves it out: its BEGIN IMMEDIATE would lock the side file
  // against the index's own writer).
  absl::StatusOr<Database*> SearchPartition(int64_t day);
  // Writable store, partition `day` (opened) with a side file: opens the file's connection
  // (creating the file) and indexes the partition's lines it lacks.
  absl::Status OpenFtsFile(int64_t day, const std::string& partition_path);
  // Indexes into the side file of `day` the lines after its fts_state.indexed_id (all of
  // them after a rebuild, when the index claims lines the partition does not have).
  absl::Status CatchUpFts(int64_t day);
  struct FtsLine {
    int64_t id;
    int64_t host_id;
    std::string_view raw;
  };
  // Indexes `lines` (ids ascending) into `db` in one transaction: a day's side file, whose
  // fts_state.indexed_id it moves too, or (side_file false) a new day's partition in memory.
  absl::Status IndexLines(Database* db, absl::Span<const FtsLine> lines, bool side_file);
  // Waits for the indexing thread and the new days' (correlate_behind), noting a failed
  // index in fts_behind_.
  absl::Status WaitFts();
  // Waits until the new day `day`, if written behind, is written (or failed to be).
  void AwaitWrite(int64_t day);
  absl::StatusOr<int64_t> HostId(const std::string& name);
  absl::StatusOr<int64_t> FileId(int64_t host_id, const LineRecord& line);
  absl::Status CorrelatePending();
  // Lines of days that are archived while the archive cannot be trusted: taken out of `by_day`
  // into the catalog's held_lines (durably, before Append returns), and counted.
  template <typename ByDay>
  absl::Status HoldUnrestorableDays(ByDay* by_day, uint64_t* held);
  // Stores the held lines whose day can be stored now, at most every kHeldRetryInterval.
  absl::Status RetryHeldLines();
  // In one catalog transaction: `observe` (which feeds the correlator), the correlator's
  // writes, each day's watermark (last_id: day -> id of its last line correlated) and the
  // site updates. On failure nothing of it is kept and the correlator is reset.
  absl::Status CommitCorrelation(const std::function<absl::Status()>& observe,
                                 const std::map<int64_t, int64_t>& last_id,
                                 absl::Span<const SiteUpdate> sites,
                                 const std::vector<int64_t>& site_hosts,
                                 const SiteDatabases& site_db);
  // Site() for the correlator thread: partitions through its own read connections.
  SiteDatabases CorrelatorSite();
  absl::Status CorrelateDay(int64_t day, int64_t after_id);
  absl::Status OpenDatabase(const std::string& path, std::unique_ptr<Database>* out);
  // How partition `day` (opened) indexes addresses beside their words.
  AddressIndex AddressIndexOf(int64_t day) const;
  // Whether the opened partition `day` has an address_queues table holding all its lines.
  bool HasAddressQueues(int64_t day) const {
    auto it = address_queues_table_.find(day);
    return it != address_queues_table_.end() && !it->second.empty();
  }
  SiteDatabases Site();

  // --- Archive (store/retention.h) ---
  // Where partition `day` is read or written: its hot file; for a read-only store else its
  // archive, decompressed into the cache (*archived set); for a writable store that creates,
  // a day that was archived is first restored to hot (a late line; see retention.h).
  absl::StatusOr<std::string> PartitionSource(int64_t day, bool create, bool* archived);
  // Whether the writable store's cached connection to `day` lost its file to retention
  // (archived or deleted); the connection is then dropped.
  bool PartitionMovedAway(int64_t day);
  // "The window includes archived days" for a search over [since_us, until_us), if it does.
  void AddArchiveNotice(int64_t since_us, int64_t until_us, std::vector<std::string>* notices);
  std::set<int64_t> archived_read_;  // days Partition() opened from the archive

  StoreOptions options_;
  std::unique_ptr<Database> catalog_;
  std::map<int64_t, std::unique_ptr<Database>> partitions_;  // day -> connection
  std::map<int64_t, AddressIndex> address_index_;            // day -> AddressIndexOf(day)
  // day -> the address_queues table a search connection reads, "" when the day has none
  // that holds all its lines (kAddressQueuesFeature).
  std::map<int64_t, std::string> address_queues_table_;
  std::string partition_image_, fts_image_;  // CreatePartitionFiles'; empty until needed
  std::string new_day_image_;                // StartNewDay's; empty until needed
  std::map<std::string, int64_t> host_ids_;
  std::map<std::pair<int64_t, uint64_t>, int64_t> file_ids_;  // (host, fingerprint) -> id
  std::unique_ptr<Correlator> correlator_;
  // Set when correlating an Append failed after its lines were committed: the watermark is
  // behind, and the next Append catches up from the stored lines first.
  bool correlation_behind_ = false;
  // held_lines has rows (-1: not looked yet), and when RetryHeldLines last tried them.
  int64_t held_lines_ = -1;
  bool retrying_held_ = false;
  absl::Time held_tried_ = absl::InfinitePast();
  // The same for a side file's index: the next Append indexes what it lacks first.
  bool fts_behind_ = false;
  // Writable store: the side files of partitions that have one (day -> connection). A
  // connection is the indexing thread's while it runs a job. The writer adds a day (a day
  // opened; the indexing thread has no lines of it in hand) under fts_files_mu_, and removes
  // one only while the thread waits; the thread looks days up with FtsFile.
  core::Mutex fts_files_mu_;
  std::map<int64_t, std::unique_ptr<Database>> fts_files_ ABSL_GUARDED_BY(fts_files_mu_);
  // The side file's connection of `day`, or null.
  Database* FtsFile(int64_t day);
  // Writable store: SearchPartition's read connections with the side file attached.
  std::map<int64_t, std::unique_ptr<Database>> search_partitions_;
  // Read-only stores: Days() as last listed, and when (absl::Now()).
  mutable std::vector<int64_t> days_listed_;
  mutable absl::Time days_listed_at_ = absl::InfinitePast();

  // correlate_behind: the new lines of one Append, for the correlator's thread and the index's.
  // The correlator thread owns the catalog and the correlator while it runs (every user of
  // either flushes first).
  struct Behind {
    struct Line {
      int64_t host_id;
      int64_t time_us;
      int64_t day;
      int64_t id;  // in the day's partition
      std::string raw;
    };
    std::vector<Line> lines;             // by day, ids ascending within a day
    std::map<int64_t, int64_t> last_id;  // day -> id of its last line
    std::vector<SiteUpdate> sites;
    std::vector<int64_t> site_hosts;  // host id of each site update
  };
  absl::Status CorrelateBehind(const Behind& batch);
  // Written behind (an import): the new days of one Append, the job that writes them, and
  // its outcome for the correlation of the same lines. Set to an error if the job is dropped
  // (after an earlier one failed) before it ran.
  struct DaysWritten {
    std::vector<std::pair<int64_t, NewDay>> days;
    std::promise<absl::Status> done;
    bool set = false;
    void Set(absl::Status s) {
      if (set) return;
      done.set_value(std::move(s));
      set = true;
    }
    ~DaysWritten() {
      Set(absl::AbortedError("the new days were not written: an earlier job failed"));
    }
  };
  // Indexes into each new day's partition (in memory) its lines among `lines` (each has day,
  // id and raw), then writes the days (WriteNewDays).
  template <typename Lines>
  absl::Status IndexAndWriteNewDays(const Lines& lines,
                                    std::vector<std::pair<int64_t, NewDay>>& days);
  // Days whose files the new days' thread is writing: day -> DaysWritten's outcome (cleared
  // by WaitFts).
  std::map<int64_t, std::shared_future<absl::Status>> writing_days_;
  // Indexes `lines` (by day, ids ascending within a day; each has day, id and raw) of days
  // with a side file into it; other days' lines were indexed with them (a day written whole,
  // an older partition).
  template <typename Lines>
  absl::Status IndexInSideFiles(const Lines& lines);
  // LinesOfOtherFiles' read connection to the catalog (the writer's may be the correlator
  // thread's at that moment), opened on first use, and what it learnt: file id -> fingerprint.
  std::unique_ptr<Database> overlap_catalog_;
  std::map<int64_t, uint64_t> overlap_file_fingerprints_;
  // The correlator thread's read connections to partitions (CorrelatorSite).
  std::map<int64_t, std::unique_ptr<Database>> correlator_partitions_;
  // Last: they stop (after their job) before anything their jobs use goes.
  std::unique_ptr<BehindWorker> correlator_worker_;
  std::unique_ptr<BehindWorker> fts_worker_;
  // An import's (not durable): indexes and writes new days (DaysWritten).
  std::unique_ptr<BehindWorker> days_worker_;
};

// UTC day number YYYYMMDD of a time.
int64_t DayOf(int64_t time_us);
// The first microsecond (UTC) of day YYYYMMDD; the day lasts 86,400 s.
int64_t DayStartUs(int64_t day);

}  // namespace maillens::store

#endif  // MAILLENS_STORE_STORE_H_
