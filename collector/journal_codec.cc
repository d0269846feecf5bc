#include "collector/journal_codec.h"

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace maillens::collector {
namespace {

// --- Encoding ---

// Appends to a borrowed string, which must outlive the writer. Varints go through a small
// stack buffer so each field is one append, without a temporary on the heap.
class Writer {
 public:
  explicit Writer(std::string* out) : out_(out) {}

  void Varint(uint64_t value) {
    char buf[10];
    size_t n = 0;
    while (value >= 0x80) {
      buf[n++] = static_cast<char>(value | 0x80);
      value >>= 7;
    }
    buf[n++] = static_cast<char>(value);
    out_->append(buf, n);
  }
  // Zigzag: small magnitudes of either sign stay short.
  void Signed(int64_t value) {
    const uint64_t u = static_cast<uint64_t>(value);
    Varint((u << 1) ^ (0 - (u >> 63)));
  }
  // See DecodeRepeated.
  void Repeated(const std::string& s, const std::string& previous) {
    if (s == previous) {
      Varint(0);
      return;
    }
    Varint(s.size() + 1);
    out_->append(s);
  }

  void Bytes(const std::string& s) {
    Varint(s.size());
    out_->append(s.data(), s.size());
  }
  void Bool(bool value) { out_->push_back(value ? 1 : 0); }

 private:
  std::string* out_;
};

// The most a varint takes, and a generous allowance for a struct's fixed-size fields.
constexpr size_t kMaxVarint = 10;
constexpr size_t kPerElement = 6 * kMaxVarint;

// An upper bound of the encoding's size for the lines and names (almost all of a batch), and an
// estimate for the site, so that one reserve() usually suffices.
size_t EstimateSize(const JournalTask& task) {
  size_t size = 1 + 3 * kMaxVarint + task.host.size();
  for (const store::LineRecord& line : task.lines) {
    size += kPerElement + line.host.size() + line.file_path.size() + line.raw.size();
  }
  for (const std::string& name : task.host_names) size += kMaxVarint + name.size();
  if (task.site.has_value()) {
    const store::SiteUpdate& site = *task.site;
    size += 2 * kPerElement + site.host.size() + site.role.size() + site.version.size() +
            kPerElement * (site.addresses.size() + site.gaps.size() + site.progress.size()) +
            2 * kMaxVarint * site.committed_end.size();
    if (site.queue.has_value()) size += kPerElement * (1 + site.queue->messages.size());
  }
  return size;
}

void EncodeQueue(const store::QueueSnapshotRecord& queue, Writer* w) {
  w->Signed(queue.taken_us);
  w->Bytes(queue.error);
  w->Varint(queue.messages.size());
  for (const store::QueuedMessageRecord& message : queue.messages) {
    w->Bytes(message.queue_name);
    w->Bytes(message.queue_id);
    w->Bytes(message.instance);
    w->Signed(message.arrival_us);
    w->Signed(message.size);
    w->Bytes(message.sender);
    w->Bool(message.forced_expire);
    w->Varint(message.recipients.size());
    for (const store::QueuedMessageRecord::Recipient& recipient : message.recipients) {
      w->Bytes(recipient.address);
      w->Bytes(recipient.delay_reason);
    }
  }
}

void EncodeSite(const store::SiteUpdate& site, Writer* w) {
  w->Bytes(site.host);
  w->Signed(site.now_us);
  w->Varint(static_cast<uint64_t>(site.session));
  w->Bytes(site.role);
  w->Bytes(site.version);
  w->Varint(site.addresses.size());
  for (const std::string& address : site.addresses) w->Bytes(address);
  w->Bool(site.batch);
  w->Varint(site.gaps.size());
  for (const store::GapRecord& gap : site.gaps) {
    w->Bytes(gap.path);
    w->Varint(gap.fingerprint);
    w->Varint(gap.from_offset);
    w->Bool(gap.to_offset.has_value());
    if (gap.to_offset.has_value()) w->Varint(*gap.to_offset);
    w->Bytes(gap.reason);
    w->Bytes(gap.detail);
    w->Signed(gap.noticed_us);
  }
  w->Varint(site.progress.size());
  for (const store::FileProgressRecord& progress : site.progress) {
    w->Bytes(progress.path);
    w->Varint(progress.fingerprint);
    w->Varint(progress.size);
    w->Varint(progress.read_offset);
    w->Varint(progress.acked_offset);
  }
  w->Signed(site.newest_event_us);
  w->Varint(site.committed_end.size());
  for (const auto& [fingerprint, end] : site.committed_end) {
    w->Varint(fingerprint);
    w->Varint(end);
  }
  w->Bool(site.queue.has_value());
  if (site.queue.has_value()) EncodeQueue(*site.queue, w);
}

// --- Decoding ---

// The fewest bytes one encoded element can take (every field at its shortest), so that a
// count can be checked against the bytes left before anything is reserved for it.
constexpr size_t kMinLine = 6;
constexpr size_t kMinString = 1;
constexpr size_t kMinGap = 7;
constexpr size_t kMinProgress = 5;
constexpr size_t kMinCommittedEnd = 2;
constexpr size_t kMinMessage = 8;
constexpr size_t kMinRecipient = 2;

// Reads a borrowed buffer, which must outlive the reader. Every method returns false on
// malformed input and keeps the first reason and where it was found; the decoders below chain
// the methods with && so that the first failure ends the decode.
class Reader {
 public:
  explicit Reader(std::string_view data)
      : begin_(data.data()), pos_(data.data()), end_(data.data() + data.size()) {}

  size_t remaining() const { return static_cast<size_t>(end_ - pos_); }
  size_t position() const { return static_cast<size_t>(pos_ - begin_); }
  const char* error() const { return error_; }
  size_t error_position() const { return error_position_; }

  bool Fail(const char* reason) {
    if (error_ == nullptr) {
      error_ = reason;
      error_position_ = position();
    }
    return false;
  }

  bool Byte(uint8_t* value) {
    if (pos_ == end_) return Fail("truncated");
    *value = static_cast<uint8_t>(*pos_++);
    return true;
  }

  // One canonical encoding per value: more than 64 bits and trailing zero groups are refused.
  bool Varint(uint64_t* value) {
    uint64_t result = 0;
    for (int shift = 0;; shift += 7) {
      if (pos_ == end_) return Fail("truncated");
      const uint8_t byte = static_cast<uint8_t>(*pos_++);
      if (shift == 63 && byte > 1) return Fail("varint past 64 bits");
      result |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) {
        if (byte == 0 && shift > 0) return Fail("overlong varint");
        *value = result;
        return true;
      }
    }
  }

  bool Signed(int64_t* value) {
    uint64_t u = 0;
    if (!Varint(&u)) return false;
    *value = static_cast<int64_t>((u >> 1) ^ (0 - (u & 1)));
    return true;
  }

  bool Bytes(std::string* s) {
    uint64_t length = 0;
    if (!Varint(&length)) return false;
    if (length > remaining()) return Fail("length past the end");
    return Take(static_cast<size_t>(length), s);
  }

  // The next `length` bytes (checked by the caller to be there).
  bool Take(size_t length, std::string* s) {
    s->assign(pos_, length);
    pos_ += length;
    return true;
  }

  bool StartsWith(std::string_view prefix) const {
    return remaining() >= prefix.size() && std::string_view(pos_, prefix.size()) == prefix;
  }

  bool Bool(bool* value) {
    uint8_t byte = 0;
    if (!Byte(&byte)) return false;
    if (byte > 1) return Fail("bool or presence byte out of range");
    *value = byte == 1;
    return true;
  }

  // A count of elements each at least `min_bytes` long.
  bool Count(size_t min_bytes, size_t* count) {
    uint64_t n = 0;
    if (!Varint(&n)) return false;
    if (n > remaining() / min_bytes) return Fail("count past the end");
    *count = static_cast<size_t>(n);
    return true;
  }

  bool Strings(std::vector<std::string>* out) {
    size_t n = 0;
    if (!Count(kMinString, &n)) return false;
    out->resize(n);
    for (std::string& s : *out) {
      if (!Bytes(&s)) return false;
    }
    return true;
  }

 private:
  const char* begin_;
  const char* pos_;
  const char* end_;
  const char* error_ = nullptr;
  size_t error_position_ = 0;
};

// A string that usually repeats the previous line's (host, file path): varint 0 for "the same
// as `previous`", else its length + 1 and its bytes.
bool DecodeRepeated(Reader* r, const std::string& previous, std::string* s) {
  uint64_t tag = 0;
  if (!r->Varint(&tag)) return false;
  if (tag == 0) {
    *s = previous;
    return true;
  }
  if (tag - 1 > r->remaining()) return r->Fail("length past the end");
  if (tag - 1 == previous.size() && r->StartsWith(previous)) {
    return r->Fail("a repeated string written out");  // would not re-encode the same
  }
  return r->Take(static_cast<size_t>(tag - 1), s);
}

bool DecodeLine(Reader* r, const store::LineRecord& previous, store::LineRecord* line) {
  return DecodeRepeated(r, previous.host, &line->host) &&
         DecodeRepeated(r, previous.file_path, &line->file_path) && r->Varint(&line->fingerprint) &&
         r->Varint(&line->offset) && r->Signed(&line->time_us) && r->Bytes(&line->raw);
}

bool DecodeGap(Reader* r, store::GapRecord* gap) {
  bool has_to = false;
  if (!r->Bytes(&gap->path) || !r->Varint(&gap->fingerprint) || !r->Varint(&gap->from_offset) ||
      !r->Bool(&has_to)) {
    return false;
  }
  if (has_to) {
    uint64_t to = 0;
    if (!r->Varint(&to)) return false;
    gap->to_offset = to;
  }
  return r->Bytes(&gap->reason) && r->Bytes(&gap->detail) && r->Signed(&gap->noticed_us);
}

bool DecodeProgress(Reader* r, store::FileProgressRecord* progress) {
  return r->Bytes(&progress->path) && r->Varint(&progress->fingerprint) &&
         r->Varint(&progress->size) && r->Varint(&progress->read_offset) &&
         r->Varint(&progress->acked_offset);
}

bool DecodeMessage(Reader* r, store::QueuedMessageRecord* message) {
  size_t n = 0;
  if (!r->Bytes(&message->queue_name) || !r->Bytes(&message->queue_id) ||
      !r->Bytes(&message->instance) || !r->Signed(&message->arrival_us) ||
      !r->Signed(&message->size) || !r->Bytes(&message->sender) ||
      !r->Bool(&message->forced_expire) || !r->Count(kMinRecipient, &n)) {
    return false;
  }
  message->recipients.resize(n);
  for (store::QueuedMessageRecord::Recipient& recipient : message->recipients) {
    if (!r->Bytes(&recipient.address) || !r->Bytes(&recipient.delay_reason)) return false;
  }
  return true;
}

bool DecodeQueue(Reader* r, store::QueueSnapshotRecord* queue) {
  size_t n = 0;
  if (!r->Signed(&queue->taken_us) || !r->Bytes(&queue->error) || !r->Count(kMinMessage, &n)) {
    return false;
  }
  queue->messages.resize(n);
  for (store::QueuedMessageRecord& message : queue->messages) {
    if (!DecodeMessage(r, &message)) return false;
  }
  return true;
}

bool DecodeSite(Reader* r, store::SiteUpdate* site) {
  uint64_t session = 0;
  if (!r->Bytes(&site->host) || !r->Signed(&site->now_us) || !r->Varint(&session)) return false;
  if (session > static_cast<uint64_t>(store::SiteUpdate::Session::kDisconnected)) {
    return r->Fail("session out of range");
  }
  site->session = static_cast<store::SiteUpdate::Session>(session);
  size_t n = 0;
  if (!r->Bytes(&site->role) || !r->Bytes(&site->version) || !r->Strings(&site->addresses) ||
      !r->Bool(&site->batch) || !r->Count(kMinGap, &n)) {
    return false;
  }
  site->gaps.resize(n);
  for (store::GapRecord& gap : site->gaps) {
    if (!DecodeGap(r, &gap)) return false;
  }
  if (!r->Count(kMinProgress, &n)) return false;
  site->progress.resize(n);
  for (store::FileProgressRecord& progress : site->progress) {
    if (!DecodeProgress(r, &progress)) return false;
  }
  if (!r->Signed(&site->newest_event_us) || !r->Count(kMinCommittedEnd, &n)) return false;
  for (size_t i = 0; i < n; ++i) {
    uint64_t fingerprint = 0;
    uint64_t end = 0;
    if (!r->Varint(&fingerprint) || !r->Varint(&end)) return false;
    // The encoder writes the map in order; anything else would not round-trip.
    if (i > 0 && fingerprint <= site->committed_end.rbegin()->first) {
      return r->Fail("committed_end out of order");
    }
    site->committed_end.emplace_hint(site->committed_end.end(), fingerprint, end);
  }
  bool has_queue = false;
  if (!r->Bool(&has_queue)) return false;
  if (!has_queue) return true;
  return DecodeQueue(r, &site->queue.emplace());
}

bool DecodeTask(Reader* r, JournalTask* task) {
  size_t n = 0;
  if (!r->Count(kMinLine, &n)) return false;
  task->lines.resize(n);
  const store::LineRecord none;
  for (size_t i = 0; i < n; ++i) {
    if (!DecodeLine(r, i == 0 ? none : task->lines[i - 1], &task->lines[i])) return false;
  }
  bool has_site = false;
  if (!r->Bytes(&task->host) || !r->Strings(&task->host_names) || !r->Bool(&has_site)) {
    return false;
  }
  if (!has_site) return true;
  return DecodeSite(r, &task->site.emplace());
}

}  // namespace

void EncodeJournalTask(const JournalTask& task, std::string* out) {
  out->reserve(out->size() + EstimateSize(task));
  Writer w(out);
  out->push_back(static_cast<char>(kJournalCodecVersion));
  w.Varint(task.lines.size());
  const store::LineRecord none;
  const store::LineRecord* previous = &none;
  for (const store::LineRecord& line : task.lines) {
    w.Repeated(line.host, previous->host);
    w.Repeated(line.file_path, previous->file_path);
    previous = &line;
    w.Varint(line.fingerprint);
    w.Varint(line.offset);
    w.Signed(line.time_us);
    w.Bytes(line.raw);
  }
  w.Bytes(task.host);
  w.Varint(task.host_names.size());
  for (const std::string& name : task.host_names) w.Bytes(name);
  w.Bool(task.site.has_value());
  if (task.site.has_value()) EncodeSite(*task.site, &w);
}

absl::StatusOr<JournalTask> DecodeJournalTask(std::string_view data) {
  if (data.empty()) return absl::DataLossError("damaged journal record: empty");
  const uint8_t version = static_cast<uint8_t>(data[0]);
  if (version != kJournalCodecVersion) {
    return absl::DataLossError(absl::StrCat("journal record version ", static_cast<int>(version),
                                            " is unknown (this build reads version ",
                                            static_cast<int>(kJournalCodecVersion), ")"));
  }
  Reader r(data.substr(1));
  JournalTask task;
  if (!DecodeTask(&r, &task)) {
    return absl::DataLossError(
        absl::StrCat("damaged journal record: ", r.error(), " at byte ", 1 + r.error_position()));
  }
  if (r.remaining() != 0) {
    return absl::DataLossError(absl::StrCat("damaged journal record: ", r.remaining(),
                                            " trailing bytes after byte ", 1 + r.position()));
  }
  return task;
}

}  // namespace maillens::collector
