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

// Bytes of one message the agent sends at most (gRPC's own limit on the channel).
constexpr int kMaxSendBytes = 64 << 20;
// What a batch holds besides its events (ids, hello, progress of every file, gaps): kept free.
constexpr size_t kBatchHeadroom = 16 << 10;
// A line is never cut shorter than this: its start says what it is.
constexpr size_t kMinLineCut = 256;
// Accepted batches after which batches shrunk by a refusal may grow again.
constexpr int kGrowAfter = 64;

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

void Shipper::Warn(const std::string& reason) {
  Reason& r = reasons_[reason];
  ++r.count;
  const absl::Time now = absl::Now();
  if (now - r.told < options_.warn_interval) {
    ++r.untold;
    return;
  }
  std::string line = reason;
  if (r.untold > 0) {
    absl::StrAppend(&line, " (", r.untold + 1, " times since the last report, ", r.count,
                    " in all)");
  }
  r.untold = 0;
  r.told = now;
  if (options_.warn) {
    options_.warn(line);
  } else {
    Log(line);
  }
}

void Shipper::Shrink(const Refused& refused) {
  std::lock_guard<std::mutex> lock(mu_);
  accepted_since_shrink_ = 0;
  if (refused.lines > 1) {
    // Half of what was refused, by lines and by bytes: a batch of N lines is down to single
    // lines after log2(N) refusals.
    cap_lines_ = std::min(cap_lines_, std::max<size_t>(1, refused.lines / 2));
    cap_bytes_ = std::min(cap_bytes_, std::max<size_t>(1, refused.bytes / 2));
  } else if (refused.lines == 1) {
    cap_lines_ = 1;
    // One line alone was refused: cut it shorter (never below kMinLineCut, the start of a
    // line that says what it is).
    cap_line_bytes_ =
        std::min(cap_line_bytes_, std::max<size_t>(kMinLineCut, refused.largest_line / 2));
  }
}

void Shipper::Run() {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS,
              static_cast<int>(absl::ToInt64Milliseconds(options_.keepalive)));
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_MAX_SEND_MESSAGE_LENGTH, kMaxSendBytes);
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
    StreamEnd ended = RunStream(stub.get());
    // Whatever was not acknowledged is handed out again on the next stream.
    tailer_->Rewind();
    if (stop_) break;
    {
      std::lock_guard<std::mutex> lock(mu_);
      stats_.connected = false;
      stats_.last_error = ended.why.ToString();
      ++stats_.reconnects;
      // Every line sent and not acknowledged is now handed out again.
      stats_.lines_resent = stats_.lines_sent - stats_.lines_acked;
      if (ended.refused) ++stats_.batches_refused;
    }
    // A stream that ran a while was healthy: start the backoff over.
    if (absl::Now() - started > absl::Seconds(30)) backoff = options_.backoff_initial;
    if (ended.refused) {
      // Smaller batches from now on; the resend goes at once, as progress is being made.
      Shrink(*ended.refused);
      backoff = options_.backoff_initial;
    }
    // Full jitter: a random wait up to the current backoff, so agents do not reconnect in step.
    std::uniform_int_distribution<int64_t> jitter(0, absl::ToInt64Milliseconds(backoff));
    absl::Duration wait = absl::Milliseconds(jitter(rng)) + absl::Milliseconds(50);
    if (ended.refusal) {
      Warn(absl::StrCat("the collector at ", options_.collector, " refused: ", ended.why.ToString(),
                        "; retrying"));
    } else {
      Log(absl::StrCat("stream to ", options_.collector, " ended (", ended.why.ToString(),
                       "); retrying in ", absl::FormatDuration(wait)));
    }
    if (!SleepUnlessStopped(wait)) break;
    if (!ended.refused) backoff = std::min(backoff * 2, options_.backoff_max);
  }
}

Shipper::StreamEnd Shipper::RunStream(maillens::v1::IngestService::Stub* stub) {
  grpc::ClientContext context;
  // A collector with open ingest (loopback, no tokens file) takes no authorization header.
  if (!options_.token.empty()) context.AddMetadata("authorization", "Bearer " + options_.token);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return StreamEnd{absl::CancelledError("stopping")};
    active_context_ = &context;
    limits_.reset();  // this stream's collector says them again (it may have been reconfigured)
  }
  std::unique_ptr<grpc::ClientReaderWriter<maillens::v1::Batch, maillens::v1::Ack>> stream =
      stub->Stream(&context);

  std::deque<InFlight> in_flight;  // guarded by mu_
  bool broken = false;             // guarded by mu_
  bool hello_acked = false;        // guarded by mu_
  // The collector ended the stream (Read saw its end): Finish gives its status, which a
  // cancel of ours would replace with CANCELLED.
  bool read_ended = false;  // guarded by mu_
  StreamEnd end;            // guarded by mu_ until the reader is joined

  // Acknowledgements come back in batch order on the same stream.
  std::thread reader([&] {
    maillens::v1::Ack ack;
    bool ended_by_collector = true;
    while (stream->Read(&ack)) {
      std::vector<TailedLine> done;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (ack.has_limits()) {
          limits_ = ack.limits();
          stats_.limit_batch_events = ack.limits().max_batch_events();
          stats_.limit_message_bytes = ack.limits().max_message_bytes();
          stats_.limit_line_bytes = ack.limits().max_line_bytes();
        }
        if (in_flight.empty() || in_flight.front().batch_id != ack.batch_id()) {
          end.why = absl::InternalError(
              absl::StrCat("acknowledgement for unknown batch ", ack.batch_id()));
          broken = true;
          ended_by_collector = false;
          break;
        }
        if (ack.status() != maillens::v1::ACK_STATUS_COMMITTED) {
          const InFlight& front = in_flight.front();
          switch (ack.status()) {
            case maillens::v1::ACK_STATUS_RETRY:
              end.why =
                  absl::UnavailableError(absl::StrCat("collector asks to retry: ", ack.detail()));
              end.retry_after = absl::Milliseconds(ack.retry_after_ms());
              ++stats_.retries;
              break;
            case maillens::v1::ACK_STATUS_TOO_LARGE:
              end.why = absl::OutOfRangeError(absl::StrCat("batch of ", front.lines.size(),
                                                           " lines too large: ", ack.detail()));
              break;
            default:
              end.why = absl::InvalidArgumentError(
                  absl::StrCat("batch of ", front.lines.size(), " lines rejected: ", ack.detail()));
              break;
          }
          end.refusal = true;
          if (ack.status() != maillens::v1::ACK_STATUS_RETRY && !front.lines.empty()) {
            end.refused = Refused{front.lines.size(), front.bytes, front.largest_line};
          }
          broken = true;
          ended_by_collector = false;
          break;
        }
        done = std::move(in_flight.front().lines);
        in_flight.pop_front();
        hello_acked = true;
        ++stats_.batches_acked;
        stats_.lines_acked += done.size();
        stats_.duplicates += ack.duplicates();
        stats_.connected = true;
        if (!done.empty() && ++accepted_since_shrink_ >= kGrowAfter) {
          // A run of accepted batches: try larger ones again (a collector reconfigured).
          accepted_since_shrink_ = 0;
          if (cap_lines_ != SIZE_MAX)
            cap_lines_ = cap_lines_ > SIZE_MAX / 2 ? SIZE_MAX : cap_lines_ * 2;
          if (cap_bytes_ != SIZE_MAX)
            cap_bytes_ = cap_bytes_ > SIZE_MAX / 2 ? SIZE_MAX : cap_bytes_ * 2;
        }
      }
      cv_.notify_all();
      absl::Status s = tailer_->AckLines(done);
      if (!s.ok()) Log(absl::StrCat("checkpoint: ", s.ToString()));
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (ended_by_collector) read_ended = true;
    broken = true;
    cv_.notify_all();
  });

  bool first = true;
  absl::Time next_queue = absl::InfinitePast();  // read the queue at once on each stream
  // Lines polled that did not fit the last batch: the next one starts with them.
  std::deque<TailedLine> carry;
  while (true) {
    std::optional<maillens::v1::CollectorLimits> limits;
    size_t cap_lines, cap_bytes, cap_line_bytes;
    {
      std::unique_lock<std::mutex> lock(mu_);
      // After the hello, nothing until its acknowledgement has said what fits.
      cv_.wait(lock, [&] {
        return stop_ || broken ||
               (in_flight.size() < options_.max_in_flight && (first || hello_acked));
      });
      if (stop_ || broken) break;
      limits = limits_;
      cap_lines = cap_lines_;
      cap_bytes = cap_bytes_;
      cap_line_bytes = cap_line_bytes_;
    }
    // What one batch may hold.
    size_t max_lines = std::min(options_.batch_lines, cap_lines);
    size_t max_bytes = std::min<size_t>(kMaxSendBytes, cap_bytes);
    size_t max_line = cap_line_bytes;
    if (limits.has_value()) {
      if (limits->max_batch_events() > 0) {
        max_lines = std::min<size_t>(max_lines, limits->max_batch_events());
      }
      if (limits->max_message_bytes() > 0) {
        max_bytes = std::min<size_t>(max_bytes, limits->max_message_bytes());
      }
      if (limits->max_line_bytes() > 0) {
        max_line = std::min<size_t>(max_line, limits->max_line_bytes());
      }
    }
    max_lines = std::max<size_t>(max_lines, 1);
    // Room for the batch's other fields (ids, hello, progress, gaps) and the event's own.
    max_bytes = max_bytes > 2 * kBatchHeadroom ? max_bytes - kBatchHeadroom : max_bytes / 2;
    // The line, and the fields parsed out of it (at most as long again), fit one batch.
    max_line = std::max<size_t>(kMinLineCut, std::min(max_line, max_bytes / 2));

    maillens::v1::Batch batch;
    batch.set_batch_id(next_batch_id_++);
    std::vector<TailedLine> lines;
    size_t largest_line = 0;
    size_t lines_cut = 0;
    if (first) {
      // The hello alone: its acknowledgement gives the limits the next batches keep to.
      *batch.mutable_hello() = options_.hello;
    } else {
      std::vector<Gap> gaps = tailer_->TakeGaps();
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
      if (options_.read_queue && absl::Now() >= next_queue) {
        // postqueue takes milliseconds; lines wait that long at most once a queue_interval.
        *batch.mutable_queue() = options_.read_queue();
        next_queue = absl::Now() + options_.queue_interval;
        if (batch.queue().ByteSizeLong() > max_bytes / 2) {
          // A queue too large for the collector's messages: say so rather than be refused.
          const size_t n = batch.queue().messages_size();
          batch.mutable_queue()->clear_messages();
          batch.mutable_queue()->set_error(
              absl::StrCat(n, " messages, too many for the collector's max_message_bytes"));
        }
      }
      // Gather lines: what is there now, topped up until the batch is full or batch_wait
      // passed. Each is cut if it alone is more than a batch may hold, and a line that does
      // not fit what the batch holds already waits for the next one.
      size_t used = batch.ByteSizeLong();
      absl::Time deadline = absl::Now() + options_.batch_wait;
      bool full = false;
      while (!full && lines.size() < max_lines && used < max_bytes) {
        if (carry.empty()) {
          auto polled = tailer_->Poll(max_lines - lines.size(), max_bytes - used);
          if (!polled.ok()) {
            Log(absl::StrCat("tailer: ", polled.status().ToString()));
            break;
          }
          for (auto& l : *polled) carry.push_back(std::move(l));
        }
        while (!carry.empty() && lines.size() < max_lines) {
          TailedLine& line = carry.front();
          maillens::v1::Event ev;
          if (line.raw.size() > max_line) {
            // Counted as dropped, as the tailer counts what it cut: the true length stays
            // raw + dropped_bytes, should the line wait for the next batch.
            line.dropped_bytes += line.raw.size() - max_line;
            line.raw.resize(max_line);
            ++lines_cut;  // once per hand-out, even if it waits for the next batch
          }
          FillEvent(line, &ev);
          if (line.dropped_bytes > 0) ev.set_original_bytes(line.raw.size() + line.dropped_bytes);
          // The event's size with its tag and length.
          const size_t size = ev.ByteSizeLong() + 16;
          if (used + size > max_bytes && !lines.empty()) {
            full = true;  // it starts the next batch
            break;
          }
          used += size;
          *batch.add_events() = std::move(ev);
          largest_line = std::max(largest_line, line.raw.size());
          lines.push_back(std::move(line));
          carry.pop_front();
        }
        if (full || lines.size() >= max_lines) break;
        if (absl::Now() >= deadline || stop_) break;
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait_for(lock, std::chrono::milliseconds(20), [&] { return stop_ || broken; });
        if (stop_ || broken) break;
      }
      if (lines.empty() && gaps.empty() && !batch.has_queue()) {
        --next_batch_id_;
        continue;
      }
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
      InFlight sent{batch.batch_id(), std::move(lines)};
      sent.bytes = batch.ByteSizeLong();
      sent.largest_line = largest_line;
      in_flight.push_back(std::move(sent));
      ++stats_.batches_sent;
      stats_.lines_sent += batch.events_size();
      stats_.gaps_sent += batch.gaps_size();
      stats_.lines_cut += lines_cut;
    }
    if (!stream->Write(batch)) break;  // the stream is gone; Finish() says why
  }
  stream->WritesDone();
  bool cancel;
  {
    std::lock_guard<std::mutex> lock(mu_);
    cancel = !read_ended;
  }
  // Our own end (stop, a refused batch): the collector's side is still open.
  if (cancel) context.TryCancel();
  reader.join();
  grpc::Status status = stream->Finish();
  std::vector<InFlight> unanswered;
  {
    std::lock_guard<std::mutex> lock(mu_);
    active_context_ = nullptr;
    for (InFlight& f : in_flight) unanswered.push_back(std::move(f));
  }
  if (end.retry_after > absl::ZeroDuration()) SleepUnlessStopped(end.retry_after);
  if (!end.why.ok()) return end;
  if (!status.ok()) {
    end.why = absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                           absl::StrCat("gRPC: ", status.error_message()));
    switch (status.error_code()) {
      case grpc::StatusCode::RESOURCE_EXHAUSTED: {
        // A message larger than the collector takes ("Received message larger than max"):
        // which one is not said, so the largest unanswered one counts.
        end.refusal = true;
        Refused largest;
        for (const InFlight& f : unanswered) {
          if (f.bytes > largest.bytes) largest = Refused{f.lines.size(), f.bytes, f.largest_line};
        }
        if (largest.lines > 0) end.refused = largest;
        break;
      }
      case grpc::StatusCode::UNAUTHENTICATED:
      case grpc::StatusCode::PERMISSION_DENIED:
      case grpc::StatusCode::INVALID_ARGUMENT:
      case grpc::StatusCode::FAILED_PRECONDITION:
        end.refusal = true;
        break;
      default:
        break;
    }
    return end;
  }
  end.why = absl::UnavailableError("stream closed by the collector");
  return end;
}

}  // namespace maillens::agent
