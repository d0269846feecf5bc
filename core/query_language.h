// The search language: free text and field:value terms in one argument list, as an
// administrator types them:
//
//   maillens search to:bob@example.ac.jp status:bounced since:2h
//   maillens search 'to:*@partner.example' dsn:5. host:dmz "relay access denied"
//
// Fields (and their aliases): from (sender), to (rcpt, recipient), host, status, qid (queue,
// queue_id), msgid (message_id, mid), client (client_ip, ip), relay, dsn, sasl (user,
// sasl_username), daemon (program), kind, since, until. Address-like values may use '*'
// anywhere (`to:*@example.org`, `from:alice@*`); `dsn:` matches by prefix (`dsn:5.`,
// `dsn:4.7.1`). `since:`/`until:` take what ParseTimeArg reads. `text:WORD` searches WORD as
// text even if it looks like a field. Everything else is a word that must occur in the line.
// Errors point at the word that is wrong.
//
// Thread-safe: pure functions.
#ifndef MAILLENS_CORE_QUERY_LANGUAGE_H_
#define MAILLENS_CORE_QUERY_LANGUAGE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/event.h"

namespace maillens::core {

// One field condition. Several conditions on the same field are alternatives (OR); different
// fields must all hold (AND).
struct FieldTerm {
  enum class Target {
    kFrom,
    kTo,  // to or orig_to
    kHost,
    kStatus,
    kQueueId,  // the line's queue ID, or a queue ID it names (queued_as, notice)
    kMessageId,
    kClient,  // client host or IP
    kRelay,   // relay host or IP
    kDsn,     // prefix
    kSasl,
    kDaemon,
    kKind,
  };
  Target target;
  std::string pattern;  // lower case for case-insensitive targets; '*' is a wildcard
};

struct Query {
  std::vector<std::string> words;  // free text: every word must occur
  std::vector<FieldTerm> terms;
  int64_t since_us = INT64_MIN;
  int64_t until_us = INT64_MAX;
  bool has_since = false;
  bool has_until = false;
};

// Parses `args` (already split by the shell). `now` and `zone` resolve relative and local
// times. An error's message names the offending word and shows where it is.
absl::StatusOr<Query> ParseQuery(const std::vector<std::string>& args, absl::Time now,
                                 absl::TimeZone zone);

// Parses a point in time: RFC 3339 ("2024-05-01T10:00:00Z"), a date or date and time in
// `zone` ("2024-05-01", "2024-05-01 10:00", "10:00" = today), "today" and "yesterday" (their
// midnight in `zone`), a syslog stamp ("Nov 22 10:00[:15]", the latest such time not after
// `now`), or a duration meaning that long before `now` ("90s", "15m", "2h", "3d", "1w").
absl::StatusOr<int64_t> ParseTimeArg(const std::string& text, absl::Time now, absl::TimeZone zone);

// Every field name the language accepts, aliases included, plus "since", "until" and "text";
// for help and shell completion.
std::vector<std::string> QueryFieldNames();
// The values status: accepts.
std::vector<std::string> QueryStatuses();

// '*' matches any run of characters; matching is on the whole value. `text` is compared as
// is; callers lower-case both sides for case-insensitive fields.
bool WildcardMatch(std::string_view pattern, std::string_view text);

// True when the parsed line `ev` of host `host` satisfies every term of `query` (the words
// are not checked here: the full-text index does that).
bool MatchesTerms(const Query& query, const Event& ev, std::string_view host);

// The outcome a line states, which `status:` matches: the lower-cased status= of a delivery,
// verification or expiry ("sent", "deferred", "bounced", "expired", "softbounce",
// "deliverable", ...); "rejected" for an SMTP, milter or cleanup reject (kReject); "held" and
// "discarded" for those actions of access, header/body checks or milters; "deleted" for
// postsuper's removal of a message (postsuper -d); "" otherwise. A hand-off that a content
// filter answered with "250 ... Ok, discarded" (amavis) is "discarded", not "sent": the mail
// went no further (DeliveryStatus).
std::string LineStatus(const Event& ev);

// A recipient's outcome from its delivery line's status= and reply: the lower-cased status,
// but "discarded" for a "sent" that a content filter answered with ", discarded".
std::string DeliveryStatus(std::string_view status, std::string_view reply);

// What the full-text index holds of a line's text, and so what free words are matched
// against: from the program name on (the time stamp and the host are not words of a line).
std::string_view IndexedText(const Event& ev, std::string_view raw);

// Whether `text` holds free word `word` as the full-text index (FTS5 unicode61) finds it:
// the word's tokens occur consecutively among the text's tokens. Tokens are runs of ASCII
// letters and digits and of bytes >= 0x80, compared without ASCII case; everything else
// separates. A trailing '*' makes the word's last token a prefix ("ali*" finds "alice").
bool ContainsWord(std::string_view text, std::string_view word);

// Per-message matching (the search's rule, see `maillens help search`): a query is a list of
// clauses, each free word one clause and each field one clause (its terms alternatives), and
// a message matches when every clause holds on at least one of its lines inside the window.
// A line that belongs to no message is matched on its own.
class QueryClauses {
 public:
  explicit QueryClauses(const Query& query);
  // A mask with one bit per clause; 0 for a query with no words and no terms.
  uint64_t all() const { return all_; }
  // The clauses line `ev` (of host `host`, raw text `raw`) satisfies.
  uint64_t OfLine(const Event& ev, std::string_view host, std::string_view raw) const;

  // One clause as its own query (for finding candidate lines through the index).
  struct Clause {
    std::vector<std::string> words;  // one word, or empty
    std::vector<FieldTerm> terms;    // the alternatives of one field, or empty
  };
  const std::vector<Clause>& clauses() const { return clauses_; }

 private:
  std::vector<Clause> clauses_;
  uint64_t all_ = 0;
};

// The most clauses a query may have (one bit each in QueryClauses' masks).
inline constexpr size_t kMaxQueryClauses = 48;

// The literal text every line matching `term` must contain (for narrowing through the
// full-text index), or "" when there is none worth using. It holds whole tokens only, so the
// index never loses a match; a trailing '*' marks its last token as a prefix (`to:ali*`
// gives "ali*"; `to:*lice@example.org` gives "example.org", since "lice" may be the end of a
// longer token).
std::string LiteralOf(const FieldTerm& term);

}  // namespace maillens::core

#endif  // MAILLENS_CORE_QUERY_LANGUAGE_H_
