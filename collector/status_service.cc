#include "collector/status_service.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/status_macros.h"

namespace maillens::collector {

namespace v1 = ::maillens::v1;

namespace {

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

absl::StatusOr<std::optional<store::SiteUpdate>> SiteUpdateOfBatch(
    const v1::Batch& batch, const std::string& host, absl::Span<const store::LineRecord> lines,
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
  store::SiteUpdate update;
  update.host = host;
  update.now_us = now_us;
  if (batch.has_hello()) {
    update.session = store::SiteUpdate::Session::kConnected;
    update.role = Bounded(batch.hello().role(), kMaxReasonBytes);
    update.version = Bounded(batch.hello().version(), kMaxReasonBytes);
    update.addresses.assign(batch.hello().addresses().begin(), batch.hello().addresses().end());
  }
  update.batch = true;
  for (const v1::FileGap& g : batch.gaps()) {
    store::GapRecord gap;
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
    store::FileProgressRecord progress;
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
    store::QueueSnapshotRecord snapshot;
    snapshot.taken_us = q.taken_us() > 0 ? q.taken_us() : now_us;
    snapshot.error = Bounded(q.error(), kMaxDetailBytes);
    for (const v1::QueuedMessage& m : q.messages()) {
      store::QueuedMessageRecord message;
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
  for (const store::LineRecord& line : lines) {
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
  core::MutexLock lock(&mu_);
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
  core::MutexLock lock(&mu_);
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

grpc::ServerUnaryReactor* StatusServiceImpl::GetQueue(grpc::CallbackServerContext* context,
                                                      const v1::QueueRequest* request,
                                                      v1::QueueResponse* response) {
  return dispatch_(context, "GetQueue", [this, request, response]() -> absl::Status {
    MAILLENS_ASSIGN_OR_RETURN(*response, store::ReadQueue(data_dir_, *request, absl::Now()));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* StatusServiceImpl::GetStatus(grpc::CallbackServerContext* context,
                                                       const v1::StatusRequest* request,
                                                       v1::StatusResponse* response) {
  return dispatch_(context, "GetStatus", [this, request, response]() -> absl::Status {
    absl::Time now = absl::Now();
    MAILLENS_ASSIGN_OR_RETURN(*response, store::ReadStatus(data_dir_, *request, now));
    if (rate_ != nullptr) *response->mutable_ingest() = rate_->Snapshot(now);
    return absl::OkStatus();
  });
}

}  // namespace maillens::collector
