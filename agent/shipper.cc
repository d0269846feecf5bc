#include "agent/shipper.h"

#include <deque>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/parser.h"

namespace maillens::agent {
namespace {

maillens::v1::TimestampForm ToProto(core::TimestampForm form) {
  switch (form) {
    case core::TimestampForm::kClassic:
      return maillens::v1::TIMESTAMP_FORM_CLASSIC;
    case core::TimestampForm::kRfc3339:
      return maillens::v1::TIMESTAMP_FORM_RFC3339;
    case core::TimestampForm::kNone:
      break;
  }
  return maillens::v1::TIMESTAMP_FORM_NONE;
}

maillens::v1::NextHopForm ToProto(core::NextHopForm form) {
  // The enums are declared in the same order; kNone maps to UNSPECIFIED.
  return static_cast<maillens::v1::NextHopForm>(static_cast<int>(form));
}

std::string GrpcError(const grpc::Status& status) {
  return absl::StrCat("gRPC ", status.error_code(), ": ", status.error_message());
}

}  // namespace

Shipper::Shipper(Tailer* tailer, ShipperOptions options)
    : tailer_(tailer), options_(std::move(options)) {}

Shipper::~Shipper() { Stop(); }

void Shipper::Log(const std::string& message) {
  if (options_.log) options_.log(message);
}

void Shipper::Stop() {
  stop_ = true;
  std::lock_guard<std::mutex> lock(mu_);
  if (active_context_ != nullptr) active_context_->TryCancel();
  cv_.notify_all();
}

ShipperStats Shipper::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

bool Shipper::SleepUnlessStopped(absl::Duration d) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, absl::ToChronoNanoseconds(d), [this] { return stop_.load(); });
  return !stop_;
}

void Shipper::FillEvent(const TailedLine& line, maillens::v1::Event* ev) {
  auto& time = time_contexts_[line.file];
  if (!time) {
    core::TimeOptions options;
    options.zone = options_.zone;
    options.reference_us = absl::ToUnixMicros(line.read_time);
    time = std::make_unique<core::TimeContext>(options);
  }
  core::Event parsed = core::ParseLine(line.raw, time.get());
  ev->set_raw(line.raw);
  ev->set_host(options_.hello.host());
  auto* file = ev->mutable_file();
  file->set_path(line.path);
  file->set_device(line.file.device);
  file->set_inode(line.file.inode);
  file->set_fingerprint(line.file.fingerprint);
  ev->set_offset(line.offset);
  ev->set_sequence(line.sequence);
  // A line without a stamp is placed at the time it was read.
  ev->set_time_us(parsed.ts_form == core::TimestampForm::kNone ? absl::ToUnixMicros(line.read_time)
                                                               : parsed.time_us);
  ev->set_timestamp_form(ToProto(parsed.ts_form));
  ev->set_program(std::string(parsed.program));
  ev->set_daemon(std::string(parsed.daemon));
  ev->set_pid(parsed.pid);
  ev->set_queue_id(std::string(parsed.queue_id));
  ev->set_kind(std::string(core::KindName(parsed.kind)));
  for (int i = 0; i < core::kFieldCount; ++i) {
    core::Field f = static_cast<core::Field>(i);
    if (!parsed.Has(f)) continue;
    auto* field = ev->add_fields();
    field->set_name(std::string(core::FieldName(f)));
    field->set_value(std::string(parsed.Get(f)));
  }
  if (!parsed.queued_as.empty()) {
    ev->set_queued_as(std::string(parsed.queued_as));
    ev->set_queued_as_form(ToProto(parsed.queued_as_form));
  }
}

void Shipper::Run() {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS,
              static_cast<int>(absl::ToInt64Milliseconds(options_.keepalive)));
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_MAX_SEND_MESSAGE_LENGTH, 64 << 20);
  if (!options_.tls_server_name.empty()) {
    args.SetSslTargetNameOverride(options_.tls_server_name);
  }
  auto credentials =
      options_.credentials ? options_.credentials : grpc::InsecureChannelCredentials();
  std::mt19937_64 rng(std::random_device{}());
  absl::Duration backoff = options_.backoff_initial;
  while (!stop_) {
    auto channel = grpc::CreateCustomChannel(options_.collector, credentials, args);
    auto stub = maillens::v1::IngestService::NewStub(channel);
    absl::Time started = absl::Now();
    absl::Status ended = RunStream(stub.get());
    // Whatever was not acknowledged is handed out again on the next stream.
    tailer_->Rewind();
    if (stop_) break;
    {
      std::lock_guard<std::mutex> lock(mu_);
      stats_.connected = false;
      stats_.last_error = ended.ToString();
      ++stats_.reconnects;
      // Every line sent and not acknowledged is now handed out again.
      stats_.lines_resent = stats_.lines_sent - stats_.lines_acked;
    }
    // A stream that ran a while was healthy: start the backoff over.
    if (absl::Now() - started > absl::Seconds(30)) backoff = options_.backoff_initial;
    // Full jitter: a random wait up to the current backoff, so agents do not reconnect in step.
    std::uniform_int_distribution<int64_t> jitter(0, absl::ToInt64Milliseconds(backoff));
    absl::Duration wait = absl::Milliseconds(jitter(rng)) + absl::Milliseconds(50);
    Log(absl::StrCat("stream to ", options_.collector, " ended (", ended.ToString(),
                     "); retrying in ", absl::FormatDuration(wait)));
    if (!SleepUnlessStopped(wait)) break;
    backoff = std::min(backoff * 2, options_.backoff_max);
  }
}

absl::Status Shipper::RunStream(maillens::v1::IngestService::Stub* stub) {
  grpc::ClientContext context;
  // A collector with open ingest (loopback, no tokens file) takes no authorization header.
  if (!options_.token.empty()) context.AddMetadata("authorization", "Bearer " + options_.token);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return absl::CancelledError("stopping");
    active_context_ = &context;
  }
  std::unique_ptr<grpc::ClientReaderWriter<maillens::v1::Batch, maillens::v1::Ack>> stream =
      stub->Stream(&context);

  std::deque<InFlight> in_flight;  // guarded by mu_
  bool broken = false;             // guarded by mu_
  absl::Status why = absl::OkStatus();
  absl::Duration retry_after = absl::ZeroDuration();

  // Acknowledgements come back in batch order on the same stream.
  std::thread reader([&] {
    maillens::v1::Ack ack;
    while (stream->Read(&ack)) {
      std::vector<TailedLine> done;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (in_flight.empty() || in_flight.front().batch_id != ack.batch_id()) {
          why = absl::InternalError(
              absl::StrCat("acknowledgement for unknown batch ", ack.batch_id()));
          broken = true;
          break;
        }
        if (ack.status() != maillens::v1::ACK_STATUS_COMMITTED) {
          why = absl::UnavailableError(absl::StrCat(ack.status() == maillens::v1::ACK_STATUS_RETRY
                                                        ? "collector asks to retry: "
                                                        : "collector rejected a batch: ",
                                                    ack.detail()));
          retry_after = absl::Milliseconds(ack.retry_after_ms());
          if (ack.status() == maillens::v1::ACK_STATUS_RETRY) ++stats_.retries;
          broken = true;
          break;
        }
        done = std::move(in_flight.front().lines);
        in_flight.pop_front();
        ++stats_.batches_acked;
        stats_.lines_acked += done.size();
        stats_.duplicates += ack.duplicates();
        stats_.connected = true;
      }
      cv_.notify_all();
      absl::Status s = tailer_->AckLines(done);
      if (!s.ok()) Log(absl::StrCat("checkpoint: ", s.ToString()));
    }
    std::lock_guard<std::mutex> lock(mu_);
    broken = true;
    cv_.notify_all();
  });

  bool first = true;
  absl::Time next_queue = absl::InfinitePast();  // read the queue at once on each stream
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_ || broken || in_flight.size() < options_.max_in_flight; });
      if (stop_ || broken) break;
    }
    // Gather a batch: what is there now, topped up until it is full or batch_wait passed.
    std::vector<TailedLine> lines;
    size_t bytes = 0;
    absl::Time deadline = absl::Now() + options_.batch_wait;
    while (lines.size() < options_.batch_lines && bytes < options_.batch_bytes) {
      auto polled =
          tailer_->Poll(options_.batch_lines - lines.size(), options_.batch_bytes - bytes);
      if (!polled.ok()) {
        Log(absl::StrCat("tailer: ", polled.status().ToString()));
        break;
      }
      for (auto& l : *polled) {
        bytes += l.raw.size();
        lines.push_back(std::move(l));
      }
      if (absl::Now() >= deadline || stop_) break;
      if (polled->empty() || lines.size() < options_.batch_lines) {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait_for(lock, std::chrono::milliseconds(20), [&] { return stop_ || broken; });
        if (stop_ || broken) break;
      }
    }
    std::vector<Gap> gaps = tailer_->TakeGaps();
    bool queue_due = options_.read_queue && absl::Now() >= next_queue;
    if (lines.empty() && gaps.empty() && !first && !queue_due) continue;
    maillens::v1::Batch batch;
    if (queue_due) {
      // postqueue takes milliseconds; lines wait that long at most once a queue_interval.
      *batch.mutable_queue() = options_.read_queue();
      next_queue = absl::Now() + options_.queue_interval;
    }
    batch.set_batch_id(next_batch_id_++);
    if (first) *batch.mutable_hello() = options_.hello;
    for (const TailedLine& line : lines) FillEvent(line, batch.add_events());
    for (const Gap& gap : gaps) {
      auto* g = batch.add_gaps();
      g->mutable_file()->set_path(gap.path);
      g->mutable_file()->set_device(gap.file.device);
      g->mutable_file()->set_inode(gap.file.inode);
      g->mutable_file()->set_fingerprint(gap.file.fingerprint);
      g->set_from_offset(gap.from_offset);
      g->set_to_known(gap.to_offset.has_value());
      g->set_to_offset(gap.to_offset.value_or(0));
      g->set_from_sequence(gap.from_sequence);
      g->set_reason(std::string(GapReasonName(gap.reason)));
      g->set_detail(gap.detail);
      g->set_time_us(absl::ToUnixMicros(gap.time));
    }
    // Where every file stands, so the collector can tell how far behind this agent is.
    for (const FileProgress& p : tailer_->Progress()) {
      auto* fp = batch.add_progress();
      fp->mutable_file()->set_path(p.path);
      fp->mutable_file()->set_device(p.file.device);
      fp->mutable_file()->set_inode(p.file.inode);
      fp->mutable_file()->set_fingerprint(p.file.fingerprint);
      fp->set_size(p.size);
      fp->set_read_offset(p.read_offset);
      fp->set_acked_offset(p.acked_offset);
    }
    first = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      in_flight.push_back(InFlight{batch.batch_id(), std::move(lines)});
      ++stats_.batches_sent;
      stats_.lines_sent += batch.events_size();
      stats_.gaps_sent += batch.gaps_size();
    }
    if (!stream->Write(batch)) break;  // the stream is gone; Finish() says why
  }
  stream->WritesDone();
  context.TryCancel();
  reader.join();
  grpc::Status status = stream->Finish();
  {
    std::lock_guard<std::mutex> lock(mu_);
    active_context_ = nullptr;
  }
  if (retry_after > absl::ZeroDuration()) SleepUnlessStopped(retry_after);
  if (!why.ok()) return why;
  if (!status.ok()) return absl::UnavailableError(GrpcError(status));
  return absl::UnavailableError("stream closed by the collector");
}

}  // namespace maillens::agent
