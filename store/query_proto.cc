#include "store/query_proto.h"

#include <algorithm>
#include <filesystem>
#include <set>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/parser.h"
#include "core/query_language.h"
#include "core/status_macros.h"
#include "store/message_search.h"
#include "store/retention.h"

namespace maillens::store {

absl::StatusOr<SearchAnswer> SearchWithTraces(Store* store, const SearchQuery& query,
                                              bool with_traces) {
  return SearchMessages(store, query, with_traces);
}

std::string OtherTracesNotice(const std::string& id, size_t matches) {
  if (matches <= 1) return "";
  return absl::StrCat("'", id, "' names ", matches,
                      " messages (a queue ID Postfix reused, or one on several hosts); the "
                      "newest is shown: 'maillens search qid:",
                      id, "' (or msgid:) lists them all");
}

std::vector<std::string> ArchiveReadNotices(const Store& store, const Trace* trace) {
  std::vector<std::string> notices;
  if (trace != nullptr && !trace->messages.empty()) {
    // The days MessageLines reads; archived ones the archive cannot vouch for are named.
    int64_t first = INT64_MAX, last = INT64_MIN;
    for (const MessageInfo& m : trace->messages) {
      first = std::min(first, DayOf(m.first_us));
      last = std::max(last, DayOf(m.end_us.value_or(m.last_us)));
    }
    if (std::string unread = UnreadableArchiveNotice(store.dir(), first, last); !unread.empty()) {
      notices.push_back(std::move(unread));
    }
    // A message whose earlier (or later) hops were on days retention deleted.
    if (std::string gone = DeletedDaysNotice(store.dir(), first, last); !gone.empty()) {
      notices.push_back(std::move(gone));
    }
  }
  std::vector<int64_t> archived = store.ArchivedDaysRead();
  if (archived.empty()) return notices;
  notices.push_back(absl::StrCat("lines of ", archived.size(),
                                 archived.size() == 1 ? " day" : " days", " (",
                                 absl::StrJoin(archived, ", "), ") read from the archive"));
  return notices;
}

absl::StatusOr<std::map<int64_t, std::vector<StoredLine>>> TraceLines(Store* store,
                                                                      const Trace& trace) {
  std::map<int64_t, std::vector<StoredLine>> lines;
  for (const MessageInfo& m : trace.messages) {
    MAILLENS_ASSIGN_OR_RETURN(lines[m.id], store->MessageLines(m));
  }
  // Dovecot's line of each mailbox step, under the hop that handed the recipient over: found
  // by its session ID (or Message-ID) on its host at its time, and kept only if it is a
  // delivery line naming it.
  core::TimeContext time{core::TimeOptions()};
  std::set<std::pair<int64_t, int64_t>> taken;  // (day, id)
  for (const MailboxStep& step : trace.mailbox) {
    const std::string& name = !step.session.empty() ? step.session : step.message_id;
    if (name.empty()) continue;
    SearchQuery q;
    q.words = {name};
    q.host = step.host;
    q.since_us = step.time_us;
    q.until_us = step.time_us + 1;
    q.limit = 20;
    MAILLENS_ASSIGN_OR_RETURN(SearchResult found, store->Search(q));
    std::vector<StoredLine>& hop = lines[step.message];
    for (StoredLine& line : found.lines) {
      const core::Event ev = core::ParseLine(line.raw, &time);
      if (ev.kind != core::Kind::kDovecotDelivery || !taken.insert({line.day, line.id}).second) {
        continue;
      }
      hop.push_back(std::move(line));
    }
    std::stable_sort(hop.begin(), hop.end(), [](const StoredLine& a, const StoredLine& b) {
      return a.time_us < b.time_us;
    });
  }
  return lines;
}

void ToProto(const StoredLine& in, v1::StoredLine* out) {
  out->set_time_us(in.time_us);
  out->set_host(in.host);
  out->set_raw(in.raw);
  out->set_day(in.day);
  out->set_id(in.id);
}

void ToProto(const MessageInfo& in, v1::MessageInfo* out) {
  out->set_id(in.id);
  out->set_trace_id(in.trace_id);
  out->set_host_id(in.host_id);
  out->set_host(in.host);
  out->set_instance(in.instance);
  out->set_queue_id(in.queue_id);
  out->set_first_us(in.first_us);
  out->set_last_us(in.last_us);
  if (in.end_us) out->set_end_us(*in.end_us);
  out->set_message_id(in.message_id);
  out->set_sender(in.sender);
  out->set_has_sender(in.has_sender);
  out->set_size(in.size);
  out->set_nrcpt(in.nrcpt);
  out->set_client(in.client);
  out->set_sasl_username(in.sasl_username);
  out->set_origin(in.origin);
  out->set_disposition(in.disposition);
}

void ToProto(const RecipientInfo& in, v1::RecipientInfo* out) {
  out->set_message(in.message);
  out->set_recipient(in.recipient);
  out->set_orig_to(in.orig_to);
  out->set_status(in.status);
  out->set_dsn(in.dsn);
  out->set_relay(in.relay);
  out->set_reply(in.reply);
  out->set_next_queue_id(in.next_queue_id);
  out->set_next_form(in.next_form);
  out->set_time_us(in.time_us);
  out->set_attempts(in.attempts);
  out->set_delay(in.delay);
  out->set_delays(in.delays);
}

void ToProto(const MailboxStep& in, v1::MailboxStep* out) {
  out->set_message(in.message);
  out->set_recipient(in.recipient);
  out->set_host(in.host);
  out->set_session(in.session);
  out->set_user(in.user);
  out->set_time_us(in.time_us);
  out->set_message_id(in.message_id);
  out->set_status(in.status);
  out->set_action(in.action);
  out->set_mailbox(in.mailbox);
  out->set_target(in.target);
  out->set_reason(in.reason);
  out->set_linked_by(in.linked_by);
}

void ToProto(const Trace& in, v1::Trace* out) {
  out->set_id(in.id);
  for (const MessageInfo& m : in.messages) ToProto(m, out->add_messages());
  for (const RecipientInfo& r : in.recipients) ToProto(r, out->add_recipients());
  for (const LinkInfo& l : in.links) {
    v1::LinkInfo* link = out->add_links();
    link->set_from(l.from);
    link->set_to(l.to);
    link->set_kind(l.kind);
  }
  for (const MailboxStep& step : in.mailbox) ToProto(step, out->add_mailbox());
}

void ToProto(const SearchAnswer& in, v1::SearchResponse* out) {
  for (size_t i = 0; i < in.result.lines.size(); ++i) {
    v1::SearchHit* hit = out->add_hits();
    ToProto(in.result.lines[i], hit->mutable_line());
    hit->set_trace_id(i < in.trace_ids.size() ? in.trace_ids[i] : 0);
  }
  for (const auto& [id, trace] : in.traces) ToProto(trace, out->add_traces());
  out->set_total(in.result.total);
  out->set_total_is_lower_bound(in.result.total_is_lower_bound);
  for (const std::string& notice : in.result.notices) out->add_notices(notice);
}

void ToProto(const std::map<int64_t, std::vector<StoredLine>>& in,
             google::protobuf::RepeatedPtrField<v1::MessageLines>* out) {
  for (const auto& [message, lines] : in) {
    v1::MessageLines* entry = out->Add();
    entry->set_message(message);
    for (const StoredLine& line : lines) ToProto(line, entry->add_lines());
  }
}

StoredLine FromProto(const v1::StoredLine& in) {
  StoredLine out;
  out.time_us = in.time_us();
  out.host = in.host();
  out.raw = in.raw();
  out.day = in.day();
  out.id = in.id();
  return out;
}

MessageInfo FromProto(const v1::MessageInfo& in) {
  MessageInfo out;
  out.id = in.id();
  out.trace_id = in.trace_id();
  out.host_id = in.host_id();
  out.host = in.host();
  out.instance = in.instance();
  out.queue_id = in.queue_id();
  out.first_us = in.first_us();
  out.last_us = in.last_us();
  if (in.has_end_us()) out.end_us = in.end_us();
  out.message_id = in.message_id();
  out.sender = in.sender();
  out.has_sender = in.has_sender();
  out.size = in.size();
  out.nrcpt = in.nrcpt();
  out.client = in.client();
  out.sasl_username = in.sasl_username();
  out.origin = in.origin();
  out.disposition = in.disposition();
  return out;
}

RecipientInfo FromProto(const v1::RecipientInfo& in) {
  RecipientInfo out;
  out.message = in.message();
  out.recipient = in.recipient();
  out.orig_to = in.orig_to();
  out.status = in.status();
  out.dsn = in.dsn();
  out.relay = in.relay();
  out.reply = in.reply();
  out.next_queue_id = in.next_queue_id();
  out.next_form = in.next_form();
  out.time_us = in.time_us();
  out.attempts = in.attempts();
  out.delay = in.delay();
  out.delays = in.delays();
  return out;
}

MailboxStep FromProto(const v1::MailboxStep& in) {
  MailboxStep out;
  out.message = in.message();
  out.recipient = in.recipient();
  out.host = in.host();
  out.session = in.session();
  out.user = in.user();
  out.time_us = in.time_us();
  out.message_id = in.message_id();
  out.status = in.status();
  out.action = in.action();
  out.mailbox = in.mailbox();
  out.target = in.target();
  out.reason = in.reason();
  out.linked_by = in.linked_by();
  return out;
}

Trace FromProto(const v1::Trace& in) {
  Trace out;
  out.id = in.id();
  for (const v1::MessageInfo& m : in.messages()) out.messages.push_back(FromProto(m));
  for (const v1::RecipientInfo& r : in.recipients()) out.recipients.push_back(FromProto(r));
  for (const v1::LinkInfo& l : in.links())
    out.links.push_back(LinkInfo{l.from(), l.to(), l.kind()});
  for (const v1::MailboxStep& step : in.mailbox()) out.mailbox.push_back(FromProto(step));
  return out;
}

SearchAnswer FromProto(const v1::SearchResponse& in) {
  SearchAnswer out;
  for (const v1::SearchHit& hit : in.hits()) {
    out.result.lines.push_back(FromProto(hit.line()));
    out.trace_ids.push_back(hit.trace_id());
  }
  for (const v1::Trace& t : in.traces()) out.traces.emplace(t.id(), FromProto(t));
  out.result.total = in.total();
  out.result.total_is_lower_bound = in.total_is_lower_bound();
  out.result.notices.assign(in.notices().begin(), in.notices().end());
  return out;
}

std::map<int64_t, std::vector<StoredLine>> FromProto(
    const google::protobuf::RepeatedPtrField<v1::MessageLines>& in) {
  std::map<int64_t, std::vector<StoredLine>> out;
  for (const v1::MessageLines& entry : in) {
    auto& lines = out[entry.message()];
    for (const v1::StoredLine& line : entry.lines()) lines.push_back(FromProto(line));
  }
  return out;
}

absl::StatusOr<core::Query> ParseTailQuery(const std::vector<std::string>& words) {
  MAILLENS_ASSIGN_OR_RETURN(core::Query query,
                            core::ParseQuery(words, absl::Now(), absl::UTCTimeZone()));
  if (query.has_since || query.has_until) {
    return absl::InvalidArgumentError(
        "tail shows the newest lines and then new ones: since: and until: do not apply "
        "(use search for a window)");
  }
  return query;
}

absl::StatusOr<std::vector<StoredLine>> TailBacklog(Store* store, const core::Query& query,
                                                    uint32_t backlog) {
  SearchQuery search;
  search.words = query.words;
  search.terms = query.terms;
  search.limit = std::min<size_t>(backlog, kMaxTailBacklog);
  MAILLENS_ASSIGN_OR_RETURN(SearchResult result, store->Search(search));
  return std::vector<StoredLine>(std::make_move_iterator(result.lines.rbegin()),
                                 std::make_move_iterator(result.lines.rend()));
}

absl::StatusOr<v1::ArchiveListResponse> ListArchive(const std::string& dir) {
  MAILLENS_ASSIGN_OR_RETURN(std::vector<ArchiveEntry> live, LiveArchive(dir));
  v1::ArchiveListResponse out;
  for (const ArchiveEntry& e : live) {
    v1::ArchivedDay* day = out.add_days();
    day->set_day(e.day);
    day->set_first_us(e.first_us);
    day->set_last_us(e.last_us);
    day->set_lines(e.lines);
    std::error_code ec;
    uint64_t size = std::filesystem::file_size(dir + "/archive/" + e.file, ec);
    day->set_bytes(ec ? 0 : size);
    day->set_sha256(e.sha256);
    for (const std::string& host : e.hosts) day->add_hosts(host);
  }
  if (!live.empty()) {
    absl::StatusOr<VerifyResult> verify = VerifyArchive(dir);
    if (verify.ok()) out.set_head(verify->head);
  }
  return out;
}

void ToProto(const VerifyResult& in, v1::ArchiveVerifyResponse* out) {
  out->set_files_checked(in.files_checked);
  out->set_entries(in.entries);
  out->set_head(in.head);
  for (const std::string& p : in.problems) out->add_problems(p);
  for (const std::string& n : in.notes) out->add_notes(n);
}

VerifyResult FromProto(const v1::ArchiveVerifyResponse& in) {
  VerifyResult out;
  out.files_checked = in.files_checked();
  out.entries = in.entries();
  out.head = in.head();
  out.problems.assign(in.problems().begin(), in.problems().end());
  out.notes.assign(in.notes().begin(), in.notes().end());
  return out;
}

}  // namespace maillens::store
