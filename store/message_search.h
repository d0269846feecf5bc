// The search the CLI and the collector answer: per message, as `maillens help search` states.
//
// A query is a list of clauses (core::QueryClauses: each free word, and each field with its
// alternatives). A *message* is a trace: every line of every instance the correlator joined,
// on every host. It matches when each clause holds on at least one of its lines inside the
// window, so `from:A to:B` finds a message whose sender line names A and whose delivery line
// names B, although Postfix never logs both on one line. A line that belongs to no message (a
// NOQUEUE reject, a connect, a SASL failure, a line whose queue ID the correlator has no
// instance for) is matched on its own.
//
// How: one clause, the one the full-text index narrows best, finds candidate lines
// (Store::Search, newest first, paged); each candidate's message is loaded whole and every
// clause checked on its lines. Every matching message has a line satisfying that clause, so
// nothing is lost; the index only makes it fast. The answer holds, newest message first, at
// most `limit` messages and of each the lines that satisfy some clause (its evidence; for a
// query without clauses, the lines found). Counting goes on past the limit up to a bound,
// beyond which the total is a lower bound, never silently.
//
// Thread-compatible: uses the store as Store allows.
#ifndef MAILLENS_STORE_MESSAGE_SEARCH_H_
#define MAILLENS_STORE_MESSAGE_SEARCH_H_

#include "absl/status/statusor.h"
#include "store/query_proto.h"
#include "store/store.h"

namespace maillens::store {

// `query.limit` counts messages. The answer's result.total counts matching messages;
// trace_ids name each line's trace (0: a line of no trace), and with `with_traces` the
// traces themselves are included.
absl::StatusOr<SearchAnswer> SearchMessages(Store* store, const SearchQuery& query,
                                            bool with_traces);

}  // namespace maillens::store

#endif  // MAILLENS_STORE_MESSAGE_SEARCH_H_
