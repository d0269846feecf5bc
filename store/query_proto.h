// The query service's messages (proto/maillens/v1/query.proto) to and from the store's
// structs, in one place, for the collector (answering) and the CLI (asking). Also the one
// search both answer with: lines plus the trace each line's message belongs to, so a client
// groups results per message without another round trip.
//
// Thread-safe: pure functions, except that the Store ones use the store as Store allows.
#ifndef MAILLENS_STORE_QUERY_PROTO_H_
#define MAILLENS_STORE_QUERY_PROTO_H_

#include <cstdint>
#include <map>
#include <vector>

#include "absl/status/statusor.h"
#include "maillens/v1/query.pb.h"
#include "store/correlator.h"
#include "store/retention.h"
#include "store/store.h"

namespace maillens::store {

// A search with, per line, the trace of its message (see v1::SearchHit.trace_id).
struct SearchAnswer {
  SearchResult result;
  std::vector<int64_t> trace_ids;   // parallel to result.lines; 0: none
  std::map<int64_t, Trace> traces;  // every trace named in trace_ids
};

// Runs `query` on `store` per message (store/message_search.h); with `with_traces`, the
// answer also holds the traces its lines name.
absl::StatusOr<SearchAnswer> SearchWithTraces(Store* store, const SearchQuery& query,
                                              bool with_traces);

// The raw lines of every message of `trace`, by MessageInfo::id; with each hop, Dovecot's lines
// of its mailbox steps (trace.mailbox).
absl::StatusOr<std::map<int64_t, std::vector<StoredLine>>> TraceLines(Store* store,
                                                                      const Trace& trace);

// "lines of N days (…) read from the archive" when `store` has read archived days, else
// nothing: the same note from a local store and through the collector.
// With `trace` (whose lines were read), also the notice naming archived days of its messages
// that could not be read (store/retention.h, UnreadableArchiveNotice).
std::vector<std::string> ArchiveReadNotices(const Store& store, const Trace* trace = nullptr);

// A trace's notice that `id` names `matches` messages and only the newest is shown; empty
// for one. Without it a queue ID reused, or one on two hosts, showed one of them as if it
// were the only one.
std::string OtherTracesNotice(const std::string& id, size_t matches);

// At most this many lines before `tail` follows: a backlog is one search held in memory.
inline constexpr size_t kMaxTailBacklog = 10000;

// The words of a `tail` as a query; since: and until: refused (tail has no window).
absl::StatusOr<core::Query> ParseTailQuery(const std::vector<std::string>& words);

// What `tail` shows before it follows: the newest min(backlog, kMaxTailBacklog) lines that
// match `query`, oldest first. The same lines from a local store and from the collector.
absl::StatusOr<std::vector<StoredLine>> TailBacklog(Store* store, const core::Query& query,
                                                    uint32_t backlog);

// `archive list` of the data directory `dir`: the live archive (LiveArchive) with each file's
// size, and the manifest's chain head as VerifyArchive reads it (absent when it cannot).
absl::StatusOr<v1::ArchiveListResponse> ListArchive(const std::string& dir);

void ToProto(const VerifyResult& in, v1::ArchiveVerifyResponse* out);
VerifyResult FromProto(const v1::ArchiveVerifyResponse& in);

void ToProto(const StoredLine& in, v1::StoredLine* out);
void ToProto(const MessageInfo& in, v1::MessageInfo* out);
void ToProto(const RecipientInfo& in, v1::RecipientInfo* out);
void ToProto(const MailboxStep& in, v1::MailboxStep* out);
void ToProto(const Trace& in, v1::Trace* out);
void ToProto(const SearchAnswer& in, v1::SearchResponse* out);
void ToProto(const std::map<int64_t, std::vector<StoredLine>>& in,
             google::protobuf::RepeatedPtrField<v1::MessageLines>* out);

StoredLine FromProto(const v1::StoredLine& in);
MessageInfo FromProto(const v1::MessageInfo& in);
RecipientInfo FromProto(const v1::RecipientInfo& in);
MailboxStep FromProto(const v1::MailboxStep& in);
Trace FromProto(const v1::Trace& in);
SearchAnswer FromProto(const v1::SearchResponse& in);
std::map<int64_t, std::vector<StoredLine>> FromProto(
    const google::protobuf::RepeatedPtrField<v1::MessageLines>& in);

}  // namespace maillens::store

#endif  // MAILLENS_STORE_QUERY_PROTO_H_
