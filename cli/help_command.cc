// `maillens help [TOPIC]` and `maillens completion bash`.
//
// The help texts teach by example: each topic shows the questions an administrator asks and
// the command that answers them. The completion script is generated from the same lists the
// search language parses (core/query_language.h), so it cannot fall behind the language.
#include "cli/help_command.h"

#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "cli/common.h"
#include "core/event.h"
#include "core/query_language.h"

namespace maillens::cli {
namespace {

constexpr char kSearchHelp[] = R"txt(maillens search — find mail across every host

  maillens search [WORD | FIELD:VALUE]... [--lines] [--json | --csv] [--limit N]
                  [--oldest-first]

The rule: search finds MESSAGES. A message is its whole trace, every line of every
hop on every host. It matches when every word and every field holds on at least one
of its lines (several values of one field are alternatives). So from:A to:B finds
mail from A to B, although Postfix logs the sender (qmgr) and the recipient (smtp,
lmtp) on different lines, and host:mx to:B finds mail to B that passed mx. Lines
that belong to no message (NOQUEUE rejects, connects, SASL failures) are matched on
their own, one line at a time. since:/until: keep only lines inside the window.

A row's STATUS is each recipient's latest status along the forward hops: sent,
deferred, bounced, expired, or counts such as "2 sent, 1 bounced"; rejected, held or
discarded when a check ended the message; deleted when the administrator removed it
from the queue (postsuper -d) while it waited, per recipient ("1 sent, 1 deleted")
or for the message when none got further; queued when nothing was delivered yet;
abandoned when the message never reached the queue (the client left, cleanup gave up); "?"
when the line's message is not correlated yet. A line of no message shows what it says:
rejected, or its kind (connect, sasl_failed, ...; see maillens parse).

A row's TIME is that of the message's matching line that comes first in the order
shown: its newest matching line, or its oldest with --oldest-first. So one message can
show different times for different questions: with qid:ID a time of that queue ID's own
lines, with status:expired the time it expired.

Results come newest first, one row per message: host and queue ID where it entered,
hops, sender, recipients (the one you asked for first, "+N" more) and the outcome of
each ("2 sent, 1 bounced"). --json gives each recipient with its own status, DSN and
reply; --csv writes one row per recipient; --lines shows, for the same messages, the
lines that matched a word or field. --limit N counts messages (default 100).

Fields (aliases in brackets):
  from:ADDR        sender address [sender]; from:<> is the null sender of bounces
  to:ADDR          recipient, or the original recipient before aliasing [rcpt, recipient]
  host:NAME        the mail host that logged the line
  status:S         what a line says happened: sent deferred bounced expired
                   undeliverable deliverable softbounce (a delivery's status=),
                   rejected (SMTP, milter or header/body-check reject), held and
                   discarded (an access, check or milter action; discarded also when
                   a content filter answered "Ok, discarded"), deleted (postsuper -d)
  qid:ID           queue ID, also where a line names it ("queued as", bounce notice)
                   [queue, queue_id]
  msgid:ID         Message-ID header, with or without <> [message_id, mid]
  client:HOST|IP   the SMTP client of smtpd/postscreen lines [client_ip, ip]
  relay:HOST|IP    the next hop a delivery went to
  dsn:PREFIX       enhanced status code, by prefix: dsn:5. dsn:4.7.1
  sasl:USER        SASL login name [user, sasl_username]
  daemon:NAME      the Postfix program: smtpd, smtp, cleanup, qmgr, lmtp, ... [program]
  kind:KIND        what the line is: delivery, reject, connect, ... (see maillens parse)
  since:TIME       from this time on; until:TIME before this time
  text:WORD        WORD as plain text even if it looks like a field ("text:to:x")

Values take '*' anywhere, any number of times: to:ali* to:*@partner.example
from:*sales* client:*.example.net. Matching is on the whole value, without case
(but Message-IDs and SASL login names with case; queue IDs in any case). A free
word matches whole words of a line (as the index reads them: letters and digits);
a trailing '*' makes it a prefix, and '*' anywhere else in a free word is refused
(use a field: to:*lak*).
Times: now, today, yesterday, a duration back from now (90s 15m 2h 3d 1w), a date
(2024-05-01), a date and time (2024-05-01 10:00), a time today (10:00), a syslog stamp
('Nov 22 10:00', 'Nov 22': the latest such time not after now), all in the local zone
(or --tz ZONE), or RFC 3339 (2024-05-01T10:00:00Z). --since/--until and
--from/--to/--host/--status/--qid/--msgid are the same as the fields.

Examples:
  Did the partner's mail reach Bob this morning?
      maillens search from:*@partner.example to:bob@example.ac.jp since:08:00
  Mail to Bob that bounced, with each recipient's outcome, for a spreadsheet:
      maillens search to:bob@example.ac.jp status:bounced --csv > bounced.csv
  Who is being refused with 5.7.1 at the DMZ?
      maillens search status:rejected dsn:5.7.1 host:dmz since:1d
  A user's complaint quotes a Message-ID:
      maillens search msgid:20240501101500.ABC123@mail.example.org
  Which clients tried to log in as "admin"?
      maillens search sasl:admin "authentication failed" since:1w
  Free text, e.g. a remote server's reply:
      maillens search "mailbox full" since:3d

No silent caps: when more messages match than are shown, maillens says how many,
and when counting or searching stopped early it says "at least" and why.
Then follow one message with: maillens trace QUEUEID
)txt";

constexpr char kTraceHelp[] = R"txt(maillens trace — one message's journey across every host

  maillens trace [--raw] [--json] QUEUEID|MESSAGE-ID
  maillens trace --all --since TIME --until TIME --json

First a verdict: what happened to each recipient, in words, from what the logs
show -- "delivered to 3 mailboxes on mx (INBOX); 1 bounced at mx.strict.test
(554 5.7.1), the non-delivery notice delivered to the sender". It says delivered
only for a mailbox delivery (local, virtual, LMTP; with Dovecot's log, the folder);
mail the last hop in the store handed to another server reads "accepted by" that
server (a foreign one, or one of ours whose log is not in the store yet; when the
store holds that queue ID unlinked, a note says how to link it). Also:
expired after how long, deferred still, rejected or discarded by which host, held
and released, deleted by the administrator, passed or blocked by the content
filter (amavis' verdict and score), and after how many deferrals a message got
through.

Then each hop in order: the host and queue ID, when it arrived and left, and what
its lines tell, each with its time: every deferral with its reason, a hold (by a
check or postsuper -h) and its release, header/body-check and access actions
(WARN, INFO, HOLD, DISCARD, REDIRECT...), the content filter's verdict, a delay
notice or non-delivery notice sent to the sender, the expiry. Every recipient with
its final status, the remote reply, any external hop (a foreign server's queue ID),
and its delay in human units with Postfix's delays=a/b/c/d named as postconf(5)
does: a = before the queue manager, including time in the deferred queue; b = in
the queue manager; c = connection setup (DNS, HELO, TLS); d = transmission. How
each hop joined the previous one: relay to one of our hosts through "queued as",
content filter re-injection on the same host, a delay or non-delivery notice. A
recipient reads deleted (and a hop [deleted]) when the administrator removed the
message from the queue with postsuper -d while it waited; its reply says why it
was waiting. --raw adds every raw line of every hop, in time order under its hop.
--json has the same facts: "verdict", "outcomes" (per recipient), each message's
"events", each link's "notice" kind, each recipient's "delays" by part. A queue ID
reused by Postfix later is a different message: trace picks the newest; a
Message-ID finds the message whatever its IDs.

Examples:
  maillens trace 4Xk2Lm0Zq1z8            a long queue ID from any host
  maillens trace '<abc@example.org>'     by Message-ID (the <> may be left out)
  maillens trace --all --since 1d --until now --json > traces.jsonl
)txt";

constexpr char kReportHelp[] = R"txt(maillens report — what happened across the site in a window

  maillens report [--since TIME] [--until TIME] [--host NAME] [--domain D[,D...]]
                  [--format text|markdown|json|html] [--output FILE]

Counts each message once however many hosts and filters it passed: received,
delivered, deferred, bounced, rejected, expired, held, discarded, bytes; per host
and per hour (hours of --tz); top sender and recipient domains, every recipient
domain with a deferral, bounce or expiry listed with its deferral lines (pflogsumm's
"defers"); deferral, bounce, reject and reject-warning reasons grouped by DSN and
reply; top rejected clients and networks; postscreen and DNSBL; warnings, fatal
errors and panics by program and text (pflogsumm's totals); mail still stuck;
delivery latency end to end and per hop; SASL and Dovecot login failures by client
and accounts whose sending jumped. --domain keeps mail from or to those domains.
How each number is counted, beside pflogsumm's: docs/REPORT.md and report --help.

What each message's outcome means (the "Outcomes" table; each message counted once):
  delivered        every recipient reached its last hop (a mailbox, or a foreign server)
  partly bounced   some recipients delivered, others bounced
  bounced          refused by the next server or undeliverable (5xx); a notice went back
  expired          deferred until the queue lifetime ran out, then returned to the sender
  deferred         still retrying after a temporary failure (4xx) at the end of the window
  rejected         refused while being received: SMTP (per recipient), a milter, or a
                   header/body check in cleanup
  discarded        accepted, then dropped on purpose (a check's DISCARD, a content filter)
  held             put on hold (a check's HOLD, postsuper -h) and not released yet
  deleted          removed from the queue by the administrator (postsuper -d) before it
                   was delivered
  in queue         received, with no delivery attempt logged yet in the window
  abandoned        the client went away before the message was complete (only client=)
  entered otherwise  neither smtpd nor pickup began it in the log: the log started mid-
                   message, or it was requeued
  notices          non-delivery and delay notices Postfix returned to senders

Examples:
  Last night's incident, for the ticket:
      maillens report --since '2024-05-01 22:00' --until '2024-05-02 06:00' --format markdown
  A self-contained HTML page with charts for the boss:
      maillens report --since 1d --format html --output report.html
)txt";

constexpr char kTopics[] = R"txt(maillens help TOPIC — topics:
  search   the search language, with examples
  trace    following a message across hosts
  report   the site-wide report
Shell completion for bash: eval "$(maillens completion bash)"  (or save it to
/etc/bash_completion.d/maillens)
)txt";

std::string Words(const std::vector<std::string>& words) { return absl::StrJoin(words, " "); }

}  // namespace

std::string BashCompletionScript() {
  std::vector<std::string> fields;
  for (const std::string& name : core::QueryFieldNames()) fields.push_back(name + ":");
  std::vector<std::string> statuses;
  for (const std::string& status : core::QueryStatuses()) statuses.push_back("status:" + status);
  std::vector<std::string> kinds;
  for (int k = 0; k < static_cast<int>(core::Kind::kCount_); ++k) {
    kinds.push_back("kind:" + std::string(core::KindName(static_cast<core::Kind>(k))));
  }
  // clang-format off
  std::string script = R"txt(# bash completion for maillens; load with: eval "$(maillens completion bash)"
_maillens() {
  local cur prev cmd i
  cur=${COMP_WORDS[COMP_CWORD]}
  prev=${COMP_WORDS[COMP_CWORD-1]}
  # Bash splits "status:bou" at ':' (COMP_WORDBREAKS): take the whole word from the line, and
  # answer with the part after the last ':' as bash will put it back.
  local word=${COMP_LINE:0:COMP_POINT}
  word=${word##*[[:space:]]}
  local colon_prefix=
  if [[ $word == *:* && $COMP_WORDBREAKS == *:* ]]; then
    colon_prefix=${word%:*}:
    [[ $prev == : ]] && prev=${COMP_WORDS[COMP_CWORD-2]}
    [[ $cur == : ]] && cur=
  fi
  cmd=
  for ((i = 1; i < COMP_CWORD; i++)); do
    case ${COMP_WORDS[i]} in
      --data|--server|--token-file|--tls-ca|--tls-cert|--tls-key) ((i++)) ;;
      -*) ;;
      *) cmd=${COMP_WORDS[i]}; break ;;
    esac
  done
  case $prev in
    --data) COMPREPLY=($(compgen -d -- "$cur")); return ;;
    --token-file|--tls-ca|--tls-cert|--tls-key|--output) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    --format) COMPREPLY=($(compgen -W "text markdown json html" -- "$cur")); return ;;
    --status) COMPREPLY=($(compgen -W "@STATUS_VALUES@" -- "$cur")); return ;;
  esac
  case $cmd in
    "") COMPREPLY=($(compgen -W "--data --server --token-file --tls-ca @COMMANDS@" -- "$cur")) ;;
    search|tail)
      COMPREPLY=($(compgen -W "@FIELDS@ @STATUSES@ @KINDS@ --lines --json --csv --limit --oldest-first --since --until --from --to --host --status --qid --msgid" -- "$word"))
      # A field name wants its value next, without a space.
      if [[ ${#COMPREPLY[@]} -eq 1 && ${COMPREPLY[0]} == *: ]]; then compopt -o nospace 2>/dev/null; fi
      if [[ -n $colon_prefix ]]; then
        local k
        for k in "${!COMPREPLY[@]}"; do COMPREPLY[k]=${COMPREPLY[k]#"$colon_prefix"}; done
      fi ;;
    trace) COMPREPLY=($(compgen -W "--raw --json --all --since --until" -- "$cur")) ;;
    report) COMPREPLY=($(compgen -W "--since --until --host --domain --format --output" -- "$cur")) ;;
    import) COMPREPLY=($(compgen -f -- "$cur")) ;;
    parse) COMPREPLY=($(compgen -f -W "--stats" -- "$cur")) ;;
    help) COMPREPLY=($(compgen -W "search trace report" -- "$cur")) ;;
    completion) COMPREPLY=($(compgen -W "bash" -- "$cur")) ;;
  esac
}
complete -F _maillens maillens
)txt";
  // clang-format on
  auto replace = [&script](const std::string& key, const std::string& value) {
    size_t at = script.find(key);
    if (at != std::string::npos) script.replace(at, key.size(), value);
  };
  replace("@STATUS_VALUES@", Words(core::QueryStatuses()));
  replace(
      "@COMMANDS@",
      "parse import search trace tail status queue report archive hosts help completion version");
  replace("@FIELDS@", Words(fields));
  replace("@STATUSES@", Words(statuses));
  replace("@KINDS@", Words(kinds));
  return script;
}

int RunHelp(const std::vector<std::string>& args, const char* usage) {
  // `help TOPIC --help` is a request for the topic: only a bare --help is about help itself.
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    std::fputs(usage, stdout);
    std::fputs(kTopics, stdout);
    return 0;
  }
  const std::string& topic = args[0];
  if (topic == "search") {
    std::fputs(kSearchHelp, stdout);
  } else if (topic == "trace") {
    std::fputs(kTraceHelp, stdout);
  } else if (topic == "report") {
    std::fputs(kReportHelp, stdout);
  } else {
    std::fprintf(stderr, "maillens help: no topic '%s'\n%s", topic.c_str(), kTopics);
    return 2;
  }
  return 0;
}

int RunCompletion(const std::vector<std::string>& args) {
  constexpr char kCompletionUsage[] =
      "usage: maillens completion bash\n"
      "  prints a bash completion script for maillens (commands, options, search fields and\n"
      "  their values): eval \"$(maillens completion bash)\", or save it to\n"
      "  /etc/bash_completion.d/maillens\n";
  if (WantsHelp(args)) {
    std::fputs(kCompletionUsage, stdout);
    return 0;
  }
  if (args.size() != 1 || args[0] != "bash") {
    std::fputs(kCompletionUsage, stderr);
    return 2;
  }
  std::fputs(BashCompletionScript().c_str(), stdout);
  return 0;
}

}  // namespace maillens::cli
