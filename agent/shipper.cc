#include "agent/shipper.h"

#include <deque>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "agent/discovery.h"
#include "core/parser.h"
#include "core/syslog_header.h"
#include "google/protobuf/io/coded_stream.h"

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
// A line is never cut shorter than this: its start says what it is.
constexpr size_t kMinLineCut = 256;
// Accepted batches after which batches shrunk by a refusal may grow again.
constexpr int kGrowAfter = 64;
// Distinct reasons Warn remembers; past it, reasons told more than warn_interval ago go.
constexpr size_t kMaxReasons = 256;

// The bytes a message of `n` bytes takes as a field of its parent (a one-byte tag and its
// length).
size_t Framed(size_t n) { return 1 + google::protobuf::io::CodedOutputStream::VarintSize64(n) + n; }

// Leaves what the collector reads of an event (the line, where it comes from, its time) and
// drops what the agent parsed out of it besides: the collector parses every line itself, and
// for a long line those fields (a bounce's reply text, say) can be as long as the line.
void DropParsedFields(maillens::v1::Event* ev) {
  ev->clear_program();
  ev->clear_daemon();
  ev->clear_pid();
  ev->clear_queue_id();
  ev->clear_kind();
  ev->clear_fields();
  ev->clear_queued_as();
  ev->clear_queued_as_form();
}

void AddProgress(const std::vector<FileProgress>& progress, maillens::v1::Batch* batch) {
  for (const FileProgress& p : progress) {
    auto* fp = batch->add_progress();
    fp->mutable_file()->set_path(p.path);
    fp->mutable_file()->set_device(p.file.device);
    fp->mutable_file()->set_inode(p.file.inode);
    fp->mutable_file()->set_fingerprint(p.file.fingerprint);
    fp->set_size(p.size);
    fp->set_read_offset(p.read_offset);
    fp->set_acked_offset(p.acked_offset);
  }
}

}  // namespace

std::string Shipper::CutWarning(const Pending& pending) const {
  const TailedLine& line = pending.line;
  std::string why;
  switch (pending.cut_by) {
    case CutBy::kNone:
      return "";
    case CutBy::kAgentMaxLine:
      why = absl::StrCat("longer than this agent's max_line_bytes (", line.raw.size(), ")");
      break;
    case CutBy::kCollectorMaxLine:
      why = absl::StrCat("longer than the collector's max_line_bytes (", pending.limit, ")");
      break;
    case CutBy::kCollectorMessage:
      why = absl::StrCat("with the rest of its event it would not fit the collector's ",
                         "max_message_bytes (", pending.limit, ")");
      break;
    case CutBy::kAgentMessage:
      why = absl::StrCat("with the rest of its event it would not fit the largest message this ",
                         "agent sends (", pending.limit, ")");
      break;
    case CutBy::kRefusal:
      why = absl::StrCat("the collector refused it when longer, so lines are sent cut to ",
                         pending.limit, " bytes, half of what was refused");
      break;
  }
  return absl::StrCat("a line of ", line.raw.size() + line.dropped_bytes, " bytes in ", line.path,
                      " was sent cut to its first ", line.raw.size(), " bytes: ", why,
                      "; the collector stores it with its true length");
}

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
  if (!options_.dovecot_patterns.empty()) CheckDovecotLine(line, parsed);
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

void Shipper::CheckDovecotLine(const TailedLine& line, const core::Event& parsed) {
  bool dovecot = dovecot_files_.count(line.file) != 0;
  if (!dovecot && MatchesAnyPattern(line.path, options_.dovecot_patterns)) {
    dovecot_files_.insert(line.file);
    dovecot = true;
  }
  if (!dovecot || core::IsDovecotLogPathLine(parsed.host, parsed.program, parsed.message)) return;
  // Shipped all the same: every line is kept, and a maillog's lines are read as such.
  Warn(absl::StrCat("format=dovecot ", line.path),
       absl::StrCat(line.path,
                    " is said to be Dovecot's own log (format=dovecot), but its line at "
                    "offset ",
                    line.offset,
                    " is not one of Dovecot's (\"Dec  7 16:03:04 lmtp(user)<pid><session>: Info: "
                    "...\"): is it a maillog? Then list it without format=dovecot"));
}

void Shipper::Warn(const std::string& reason) { Warn(reason, reason); }

void Shipper::Warn(const std::string& key, const std::string& message) {
  const absl::Time now = absl::Now();
  if (reasons_.size() >= kMaxReasons && reasons_.find(key) == reasons_.end()) {
    // Bounded: forget reasons not told for a while (one that recurs is told afresh).
    for (auto it = reasons_.begin(); it != reasons_.end();) {
      it = now - it->second.told >= options_.warn_interval ? reasons_.erase(it) : std::next(it);
    }
  }
  Reason& r = reasons_[key];
  ++r.count;
  if (now - r.told < options_.warn_interval) {
    ++r.untold;
    return;
  }
  std::string line = message;
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
  {
    std::lock_guard<std::mutex> lock(mu_);
    unreachable_since_ = absl::Now();  // nothing reached yet
  }
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
    const absl::Time now = absl::Now();
    absl::Time unreachable_since;
    {
      std::lock_guard<std::mutex> lock(mu_);
      // The collector answered (a refusal is an answer), or this stream was up a while: it
      // was reachable until now.
      if (ended.refusal || ended.connected) unreachable_since_ = now;
      unreachable_since = unreachable_since_;
    }
    // A new outage is told as such, not as the recurrence of one that ended.
    if (ended.connected) reasons_.erase("unreachable");
    if (ended.refusal) {
      Warn(absl::StrCat("the collector at ", options_.collector, " refused: ", ended.why.ToString(),
                        "; retrying"));
    } else {
      Log(absl::StrCat("stream to ", options_.collector, " ended (", ended.why.ToString(),
                       "); retrying in ", absl::FormatDuration(wait)));
      // A blip (a collector restarting) is told above; one that lasts is a warning, again
      // every warn_interval while it lasts, with how many attempts failed.
      if (now - unreachable_since >= options_.unreachable_warn_after) {
        Warn("unreachable",
             absl::StrCat("the collector at ", options_.collector, " has been unreachable for ",
                          absl::FormatDuration(
                              absl::Trunc(now - unreachable_since, absl::Milliseconds(100))),
                          " (", ended.why.ToString(), "); still retrying"));
        std::lock_guard<std::mutex> lock(mu_);
        unreachable_warned_ = true;
      }
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
    if (stop_) {
      StreamEnd stopping;
      stopping.why = absl::CancelledError("stopping");
      return stopping;
    }
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
  bool read_ended = false;   // guarded by mu_
  bool reader_done = false;  // guarded by mu_
  StreamEnd end;             // guarded by mu_ until the reader is joined

  // Acknowledgements come back in batch order on the same stream.
  std::thread reader([&] {
    maillens::v1::Ack ack;
    bool ended_by_collector = true;
    while (stream->Read(&ack)) {
      std::vector<TailedLine> done;
      std::string reachable_again;  // told once mu_ is released
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
        if (!hello_acked && unreachable_warned_) {
          // The warning said it was unreachable: say that is over.
          unreachable_warned_ = false;
          reachable_again = absl::StrCat(
              "the collector at ", options_.collector, " is reachable again (unreachable for ",
              absl::FormatDuration(
                  absl::Trunc(absl::Now() - unreachable_since_, absl::Milliseconds(100))),
              ")");
        }
        hello_acked = true;
        end.connected = true;
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
      if (!reachable_again.empty()) Log(reachable_again);
      absl::Status s = tailer_->AckLines(done);
      if (!s.ok()) Log(absl::StrCat("checkpoint: ", s.ToString()));
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (ended_by_collector) read_ended = true;
    broken = true;
    reader_done = true;
    cv_.notify_all();
  });

  bool first = true;
  bool write_failed = false;
  absl::Time next_queue = absl::InfinitePast();  // read the queue at once on each stream
  // Lines polled that did not fit the last batch: the next one starts with them.
  std::deque<Pending> carry;
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
    // What one batch may hold. hard_bytes: the largest message the collector takes (a larger
    // one is refused whole), which a line alone in its batch may use; pack_bytes: what several
    // lines are packed to (less after a refused batch, from a collector that announces
    // nothing). max_line: longer lines are cut to it, under the limit line_cut_by names.
    size_t max_lines = std::min(options_.batch_lines, cap_lines);
    size_t hard_bytes = kMaxSendBytes;
    CutBy message_cut_by = CutBy::kAgentMessage;
    size_t max_line = cap_line_bytes;
    CutBy line_cut_by = CutBy::kRefusal;
    if (limits.has_value()) {
      if (limits->max_batch_events() > 0) {
        max_lines = std::min<size_t>(max_lines, limits->max_batch_events());
      }
      if (limits->max_message_bytes() > 0 && limits->max_message_bytes() < hard_bytes) {
        hard_bytes = limits->max_message_bytes();
        message_cut_by = CutBy::kCollectorMessage;
      }
      if (limits->max_line_bytes() > 0 && limits->max_line_bytes() < max_line) {
        max_line = limits->max_line_bytes();
        line_cut_by = CutBy::kCollectorMaxLine;
      }
    }
    max_lines = std::max<size_t>(max_lines, 1);
    max_line = std::max(max_line, kMinLineCut);
    const size_t pack_bytes = std::min(hard_bytes, cap_bytes);

    maillens::v1::Batch batch;
    batch.set_batch_id(next_batch_id_++);
    const size_t bare_batch = batch.ByteSizeLong();
    std::vector<TailedLine> lines;
    size_t largest_line = 0;
    size_t lines_cut = 0;
    bool with_progress = true;
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
        if (batch.queue().ByteSizeLong() > pack_bytes / 2) {
          // A queue too large for the collector's messages: say so rather than be refused.
          const size_t n = batch.queue().messages_size();
          batch.mutable_queue()->clear_messages();
          batch.mutable_queue()->set_error(
              absl::StrCat(n, " messages, too many for the collector's max_message_bytes"));
        }
      }
      // Where every file stands goes in last. Room is kept for it as it is now, with some for
      // its numbers to grow, but never more than a quarter of the batch: should it not fit in
      // the end, the batch goes without it and the next one says it.
      size_t progress_room;
      {
        maillens::v1::Batch progress;
        AddProgress(tailer_->Progress(), &progress);
        progress_room =
            std::min(progress.ByteSizeLong() + 32 * progress.progress_size() + 64, pack_bytes / 4);
      }
      // Gather lines: what is there now, topped up until the batch is full or batch_wait
      // passed. A line that does not fit what the batch holds already waits for the next one;
      // one that does not fit a batch of its own is cut.
      size_t used = batch.ByteSizeLong();
      absl::Time deadline = absl::Now() + options_.batch_wait;
      bool full = false;
      while (!full && lines.size() < max_lines && used + progress_room < pack_bytes) {
        if (carry.empty()) {
          auto polled = tailer_->Poll(max_lines - lines.size(), pack_bytes - used - progress_room);
          if (!polled.ok()) {
            Log(absl::StrCat("tailer: ", polled.status().ToString()));
            break;
          }
          for (auto& l : *polled) {
            Pending pending{std::move(l)};
            // Cut by the tailer: longer than this agent's own max_line_bytes.
            if (pending.line.dropped_bytes > 0) {
              pending.cut_by = CutBy::kAgentMaxLine;
              pending.limit = pending.line.raw.size();
            }
            carry.push_back(std::move(pending));
          }
        }
        while (!carry.empty() && lines.size() < max_lines) {
          Pending& pending = carry.front();
          TailedLine& line = pending.line;
          if (line.raw.size() > max_line) {
            // Counted as dropped, as the tailer counts what it cut: the true length stays
            // raw + dropped_bytes, should the line wait for the next batch.
            line.dropped_bytes += line.raw.size() - max_line;
            line.raw.resize(max_line);
            pending.cut_by = line_cut_by;
            pending.limit = max_line;
          }
          maillens::v1::Event ev;
          FillEvent(line, &ev);
          if (line.dropped_bytes > 0) ev.set_original_bytes(line.raw.size() + line.dropped_bytes);
          size_t size = Framed(ev.ByteSizeLong());
          if (used + size + progress_room > pack_bytes) {
            if (!lines.empty() || used > bare_batch) {
              // It starts the next batch, where it has all the room a batch has.
              full = true;
              break;
            }
            // Alone in its batch, it may use all the collector takes; without the fields
            // parsed out of it if need be (the collector parses it again), then without where
            // the files stand, and only when even that is not enough, cut.
            if (used + size + progress_room > hard_bytes) {
              DropParsedFields(&ev);
              size = Framed(ev.ByteSizeLong());
            }
            if (used + size + progress_room > hard_bytes) {
              with_progress = false;
              progress_room = 0;
            }
            if (used + size > hard_bytes) {
              // The true length first: it is part of what must fit.
              ev.set_original_bytes(line.raw.size() + line.dropped_bytes);
              size = Framed(ev.ByteSizeLong());
              const size_t excess = used + size - hard_bytes;
              const size_t keep = std::max(line.raw.size() > excess ? line.raw.size() - excess : 0,
                                           std::min(kMinLineCut, line.raw.size()));
              line.dropped_bytes += line.raw.size() - keep;
              line.raw.resize(keep);
              ev.mutable_raw()->resize(keep);
              size = Framed(ev.ByteSizeLong());
              pending.cut_by = message_cut_by;
              pending.limit = hard_bytes;
            }
            full = true;  // nothing goes with it
          }
          used += size;
          *batch.add_events() = std::move(ev);
          largest_line = std::max(largest_line, line.raw.size());
          if (pending.cut_by != CutBy::kNone) {
            // Once per line sent cut (resends too), as the stats count it.
            if (pending.cut_by != CutBy::kAgentMaxLine) ++lines_cut;
            Warn(absl::StrCat("cut ", static_cast<int>(pending.cut_by), " ", pending.limit),
                 CutWarning(pending));
          }
          lines.push_back(std::move(line));
          carry.pop_front();
          if (full) break;
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
    // Where every file stands, so the collector can tell how far behind this agent is. The
    // collector takes a batch's list as the whole of it, so it goes in whole or not at all.
    if (with_progress) AddProgress(tailer_->Progress(), &batch);
    if (batch.ByteSizeLong() > hard_bytes) batch.clear_progress();
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
    if (!stream->Write(batch)) {
      write_failed = true;  // the stream is gone; Finish() says why
      break;
    }
  }
  stream->WritesDone();
  bool cancel;
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (write_failed) {
      // The call is over on gRPC's side and the reader is about to see its end; Finish then
      // gives the collector's status (its refusal), which a cancel of ours would replace with
      // CANCELLED. Bounded, should that end never show.
      cv_.wait_for(lock, std::chrono::seconds(10), [&] { return reader_done || stop_.load(); });
    }
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
