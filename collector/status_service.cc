#include "collector/status_service.h"

#include <algorithm>
#include <filesystem>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "collector/retention.h"
#include "collector/sqlite.h"
#include "collector/store.h"
#include "core/status_macros.h"

namespace maillens::collector {

namespace v1 = ::maillens::v1;

namespace {

constexpr uint32_t kDefaultListed = 50;
constexpr uint32_t kMaxListed = 10000;

uint32_t Listed(uint32_t requested) {
  return requested == 0 ? kDefaultListed : std::min(requested, kMaxListed);
}

constexpr int kMaxGapsPerBatch = 10000;
constexpr int kMaxProgressPerBatch = 10000;
constexpr size_t kMaxPathBytes = 4096;
constexpr size_t kMaxReasonBytes = 64;
constexpr size_t kMaxDetailBytes = 1024;
// Messages of one queue snapshot taken at most (a queue that long is an incident of its own;
// the gRPC message size bounds it too).
constexpr int kMaxQueuedPerBatch = 100000;

std::string Bounded(const std::string& s, size_t max) { return s.substr(0, max); }

}  // namespace

absl::StatusOr<std::optional<SiteUpdate>> SiteUpdateOfBatch(const v1::Batch& batch,
                                                            const std::string& host,
                                                            absl::Span<const LineRecord> lines,
                                                            int64_t now_us) {
  if (!batch.has_hello() && batch.gaps_size() == 0 && batch.progress_size() == 0 &&
      !batch.has_queue() && lines.empty()) {
    return std::nullopt;
  }
  if (host.empty()) {
    if (batch.gaps_size() > 0 || batch.progress_size() > 0 || batch.has_queue()) {
      return absl::InvalidArgumentError(
          "the batch reports gaps, file progress or a queue but the stream announced no host "
          "(AgentHello.host)");
    }
    return std::nullopt;  // lines name their hosts; there is no agent to speak of
  }
  if (batch.gaps_size() > kMaxGapsPerBatch || batch.progress_size() > kMaxProgressPerBatch) {
    return absl::InvalidArgumentError(absl::StrCat("the batch reports more than ", kMaxGapsPerBatch,
                                                   " gaps or files; send them in several"));
  }
  SiteUpdate update;
  update.host = host;
  update.now_us = now_us;
  if (batch.has_hello()) {
    update.session = SiteUpdate::Session::kConnected;
    update.role = Bounded(batch.hello().role(), kMaxReasonBytes);
    update.version = Bounded(batch.hello().version(), kMaxReasonBytes);
    update.addresses.assign(batch.hello().addresses().begin(), batch.hello().addresses().end());
  }
  update.batch = true;
  for (const v1::FileGap& g : batch.gaps()) {
    GapRecord gap;
    gap.path = Bounded(g.file().path(), kMaxPathBytes);
    gap.fingerprint = g.file().fingerprint();
    gap.from_offset = g.from_offset();
    if (g.to_known()) gap.to_offset = g.to_offset();
    gap.reason = Bounded(g.reason(), kMaxReasonBytes);
    gap.detail = Bounded(g.detail(), kMaxDetailBytes);
    gap.noticed_us = g.time_us() > 0 ? g.time_us() : now_us;
    update.gaps.push_back(std::move(gap));
  }
  for (const v1::FileProgress& p : batch.progress()) {
    FileProgressRecord progress;
    progress.path = Bounded(p.file().path(), kMaxPathBytes);
    progress.fingerprint = p.file().fingerprint();
    progress.size = p.size();
    progress.read_offset = p.read_offset();
    progress.acked_offset = p.acked_offset();
    update.progress.push_back(std::move(progress));
  }
  if (batch.has_queue()) {
    const v1::QueueSnapshot& q = batch.queue();
    if (q.messages_size() > kMaxQueuedPerBatch) {
      return absl::InvalidArgumentError(absl::StrCat("the queue snapshot lists ", q.messages_size(),
                                                     " messages; at most ", kMaxQueuedPerBatch,
                                                     " are taken"));
    }
    QueueSnapshotRecord snapshot;
    snapshot.taken_us = q.taken_us() > 0 ? q.taken_us() : now_us;
    snapshot.error = Bounded(q.error(), kMaxDetailBytes);
    for (const v1::QueuedMessage& m : q.messages()) {
      QueuedMessageRecord message;
      message.queue_name = Bounded(m.queue_name(), kMaxReasonBytes);
      message.queue_id = Bounded(m.queue_id(), kMaxReasonBytes);
      message.instance = Bounded(m.instance(), kMaxPathBytes);
      message.arrival_us = m.arrival_time() * 1000000;
      message.size = m.message_size();
      message.sender = Bounded(m.sender(), kMaxDetailBytes);
      message.forced_expire = m.forced_expire();
      for (const v1::QueuedRecipient& r : m.recipients()) {
        message.recipients.push_back(
            {Bounded(r.address(), kMaxDetailBytes), Bounded(r.delay_reason(), kMaxDetailBytes)});
      }
      snapshot.messages.push_back(std::move(message));
    }
    update.queue = std::move(snapshot);
  }
  for (const LineRecord& line : lines) {
    if (line.host != host) continue;
    update.newest_event_us = std::max(update.newest_event_us, line.time_us);
    uint64_t& end = update.committed_end[line.fingerprint];
    end = std::max<uint64_t>(end, line.offset + line.raw.size() + 1);
  }
  return update;
}

void IngestRate::Add(uint64_t lines, absl::Time now) {
  int64_t second = absl::ToUnixSeconds(now);
  size_t slot = static_cast<size_t>(((second % kSeconds) + kSeconds) % kSeconds);
  absl::MutexLock lock(&mu_);
  total_ += lines;
  if (seconds_[slot] != second) {
    seconds_[slot] = second;
    lines_[slot] = 0;
  }
  lines_[slot] += lines;
}

v1::IngestRate IngestRate::Snapshot(absl::Time now) const {
  int64_t second = absl::ToUnixSeconds(now);
  v1::IngestRate out;
  out.set_started_us(absl::ToUnixMicros(started_));
  if (backlog_) {
    auto [batches, bytes] = backlog_();
    out.set_index_backlog_batches(batches);
    out.set_index_backlog_bytes(bytes);
  }
  absl::MutexLock lock(&mu_);
  uint64_t recent = 0;
  for (int i = 0; i < kSeconds; ++i) {
    if (seconds_[i] > second - kSeconds && seconds_[i] <= second) recent += lines_[i];
  }
  out.set_lines_since_start(total_);
  // A process younger than a minute has had less than a minute to take lines in.
  double window = std::clamp(absl::ToDoubleSeconds(now - started_), 1.0, double{kSeconds});
  out.set_lines_per_second_last_minute(static_cast<double>(recent) / window);
  double age = std::max(absl::ToDoubleSeconds(now - started_), 1.0);
  out.set_lines_per_second_since_start(static_cast<double>(total_) / age);
  return out;
}

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

grpc::ServerUnaryReactor* StatusServiceImpl::GetQueue(grpc::CallbackServerContext* context,
                                                      const v1::QueueRequest* request,
                                                      v1::QueueResponse* response) {
  return dispatch_(context, "GetQueue", [this, request, response]() -> absl::Status {
    MAILLENS_ASSIGN_OR_RETURN(*response, ReadQueue(data_dir_, *request, absl::Now()));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* StatusServiceImpl::GetStatus(grpc::CallbackServerContext* context,
                                                       const v1::StatusRequest* request,
                                                       v1::StatusResponse* response) {
  return dispatch_(context, "GetStatus", [this, request, response]() -> absl::Status {
    absl::Time now = absl::Now();
    MAILLENS_ASSIGN_OR_RETURN(*response, ReadStatus(data_dir_, *request, now));
    if (rate_ != nullptr) *response->mutable_ingest() = rate_->Snapshot(now);
    return absl::OkStatus();
  });
}

}  // namespace maillens::collector
