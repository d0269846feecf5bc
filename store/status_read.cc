#include "store/status_read.h"

#include <algorithm>
#include <filesystem>
#include <memory>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "store/retention.h"
#include "store/sqlite.h"
#include "store/store.h"

namespace maillens::store {

namespace v1 = ::maillens::v1;

namespace {

constexpr uint32_t kDefaultListed = 50;
constexpr uint32_t kMaxListed = 10000;

uint32_t Listed(uint32_t requested) {
  return requested == 0 ? kDefaultListed : std::min(requested, kMaxListed);
}

}  // namespace

v1::StatusResponse StatusToProto(const SiteStatus& status) {
  v1::StatusResponse out;
  out.set_now_us(status.now_us);
  for (const AgentState& a : status.agents) {
    v1::AgentStatus* agent = out.add_agents();
    agent->set_host(a.host);
    agent->set_role(a.role);
    agent->set_version(a.version);
    for (const std::string& address : a.addresses) agent->add_addresses(address);
    agent->set_connected(a.connected);
    agent->set_since_us(a.since_us);
    agent->set_first_seen_us(a.first_seen_us);
    agent->set_last_seen_us(a.last_seen_us);
    agent->set_last_event_us(a.last_event_us);
    agent->set_lag_bytes(a.lag_bytes);
    agent->set_lag_seconds(a.lag_seconds);
    for (const AgentFileState& f : a.files) {
      v1::AgentFile* file = agent->add_files();
      file->set_path(f.path);
      file->set_fingerprint(f.fingerprint);
      file->set_size(f.size);
      file->set_read_offset(f.read_offset);
      file->set_acked_offset(f.acked_offset);
      file->set_updated_us(f.updated_us);
    }
  }
  for (const PartitionState& p : status.partitions) {
    v1::PartitionStatus* partition = out.add_partitions();
    partition->set_day(p.day);
    partition->set_lines(p.lines);
    partition->set_bytes(p.bytes);
  }
  out.set_disk_bytes(status.disk_bytes);
  out.set_gap_count(status.gap_count);
  for (const GapState& g : status.gaps) {
    v1::GapStatus* gap = out.add_gaps();
    gap->set_host(g.host);
    gap->set_path(g.gap.path);
    gap->set_fingerprint(g.gap.fingerprint);
    gap->set_from_offset(g.gap.from_offset);
    gap->set_to_known(g.gap.to_offset.has_value());
    gap->set_to_offset(g.gap.to_offset.value_or(0));
    gap->set_reason(g.gap.reason);
    gap->set_detail(g.gap.detail);
    gap->set_noticed_us(g.gap.noticed_us);
    gap->set_window_from_us(g.window_from_us);
    gap->set_window_to_us(g.window_to_us);
  }
  out.set_offline_count(status.offline_count);
  for (const OfflineState& o : status.offline) {
    v1::OfflinePeriod* period = out.add_offline();
    period->set_host(o.host);
    period->set_from_us(o.from_us);
    period->set_to_us(o.to_us);
  }
  return out;
}

absl::StatusOr<v1::StatusResponse> ReadStatus(const std::string& data_dir,
                                              const v1::StatusRequest& request, absl::Time now) {
  StoreOptions options;
  options.dir = data_dir;
  options.read_only = true;
  MAILLENS_ASSIGN_OR_RETURN(std::unique_ptr<Store> store, Store::Open(options));
  MAILLENS_ASSIGN_OR_RETURN(
      SiteStatus status, store->GetSiteStatus(absl::ToUnixMicros(now), Listed(request.max_gaps()),
                                              Listed(request.max_offline())));
  v1::StatusResponse out = StatusToProto(status);
  // The disk figure is what the disk budget counts: everything under the data directory, by
  // part (SiteStatus's own figure is the catalog and the hot days only).
  DataUsage usage = DataDirUsage(data_dir);
  out.set_disk_bytes(usage.total());
  v1::DiskUsage* parts = out.mutable_disk_usage();
  parts->set_days(usage.days);
  parts->set_catalog(usage.catalog);
  parts->set_journal(usage.journal);
  parts->set_archive(usage.archive);
  parts->set_cache(usage.cache);
  parts->set_other(usage.other);
  parts->set_catalog_free(usage.catalog_free);
  // Lines acknowledged but held back (Store::Append): searches cannot find them yet.
  if (auto catalog = Database::Open(data_dir + "/catalog.db", Database::Mode::kReadOnly);
      catalog.ok()) {
    auto held = (*catalog)->Prepare(
        "SELECT count(*), min(time_us), max(time_us), min(reason) FROM held_lines");
    if (held.ok()) {
      auto step = held->Step();  // no such table: a catalog older than held lines
      if (step.ok() && *step == Statement::StepResult::kRow && held->ColumnInt(0) > 0) {
        out.add_warnings(absl::StrCat(
            held->ColumnInt(0), " stored lines are held back and cannot be searched yet (",
            DayOf(held->ColumnInt(1)),
            DayOf(held->ColumnInt(1)) == DayOf(held->ColumnInt(2))
                ? ""
                : absl::StrCat("..", DayOf(held->ColumnInt(2))),
            "): ", std::string(held->ColumnText(3)),
            "; they are stored within a minute of the archive being repaired"));
      }
    }
  }
  // The collector only logs this; an admin who looks at status must see it too.
  ArchiveReadProblem archive = UnreadableArchive(data_dir);
  if (!archive.reason.empty()) {
    std::string days;
    if (!archive.days.empty()) {
      days = absl::StrCat(
          "; searches, traces and reports leave out ", archive.days.size(),
          archive.days.size() == 1 ? " archived day (" : " archived days (", archive.days.front(),
          archive.days.size() == 1 ? "" : absl::StrCat("..", archive.days.back()), ")");
    }
    out.add_warnings(absl::StrCat("the archive cannot be trusted: ", archive.reason, days,
                                  "; retention deletes nothing until `maillens archive verify` "
                                  "passes (see `maillens archive repair`)"));
  } else if (absl::StatusOr<std::vector<ArchiveEntry>> live = LiveArchive(data_dir); live.ok()) {
    // A missing file goes unnoticed while its day's cached copy serves queries, until the
    // cache is emptied (the disk budget empties it first): said now, by a stat per day.
    std::vector<int64_t> missing;
    for (const ArchiveEntry& e : *live) {
      if (!std::filesystem::exists(absl::StrCat(data_dir, "/archive/", e.file))) {
        missing.push_back(e.day);
      }
    }
    if (!missing.empty()) {
      out.add_warnings(absl::StrCat(
          "archive files missing for ", missing.size(), missing.size() == 1 ? " day (" : " days (",
          missing.front(), missing.size() == 1 ? "" : absl::StrCat("..", missing.back()),
          "): queries read a cached copy while one lasts, then fail; run `maillens archive "
          "verify`"));
    }
  }
  return out;
}

absl::StatusOr<v1::QueueResponse> ReadQueue(const std::string& data_dir,
                                            const v1::QueueRequest& request, absl::Time now) {
  std::string path = data_dir + "/catalog.db";
  if (!std::filesystem::exists(path)) {
    return absl::NotFoundError(absl::StrCat("no catalog at ", path, ": not a data directory"));
  }
  MAILLENS_ASSIGN_OR_RETURN(std::unique_ptr<Database> catalog,
                            Database::Open(path, Database::Mode::kReadOnly));
  MAILLENS_ASSIGN_OR_RETURN(std::vector<HostQueueState> hosts,
                            ReadQueues(catalog.get(), request.host()));
  v1::QueueResponse out;
  out.set_now_us(absl::ToUnixMicros(now));
  for (const HostQueueState& h : hosts) {
    v1::HostQueue* host = out.add_hosts();
    host->set_host(h.host);
    host->set_taken_us(h.snapshot.taken_us);
    host->set_error(h.snapshot.error);
    host->set_interval_us(h.interval_us);
    host->set_age_us(std::max<int64_t>(0, out.now_us() - h.snapshot.taken_us));
    for (size_t i = 0; i < h.snapshot.messages.size(); ++i) {
      const QueuedMessageRecord& m = h.snapshot.messages[i];
      v1::QueuedMessage* message = host->add_messages();
      message->set_queue_name(m.queue_name);
      message->set_queue_id(m.queue_id);
      message->set_instance(m.instance);
      message->set_arrival_time(m.arrival_us / 1000000);
      message->set_message_size(m.size);
      message->set_sender(m.sender);
      message->set_forced_expire(m.forced_expire);
      for (const QueuedMessageRecord::Recipient& r : m.recipients) {
        v1::QueuedRecipient* recipient = message->add_recipients();
        recipient->set_address(r.address);
        recipient->set_delay_reason(r.delay_reason);
      }
      const QueuedTraceRef& ref = h.traces[i];
      host->add_trace_ids(ref.trace_id);
      v1::QueuedTrace* trace = host->add_traces();
      trace->set_trace_id(ref.trace_id);
      trace->set_first_host(ref.first_host);
      trace->set_first_queue_id(ref.first_queue_id);
      trace->set_status(ref.status);
    }
  }
  return out;
}

}  // namespace maillens::store
