// The typed event the parser makes of one maillog line.
//
// An Event is a set of views into the line it was parsed from (and, for a few fields such as
// `detail`, and the daemon of a line from Dovecot's own log file, into the parser's constant
// words): it owns nothing and is valid only while that line's bytes are. Copy what must outlive
// the line (see ToOwned callers in agent/ and collector/). Thread-compatible: a value type with
// no shared state.
#ifndef MAILLENS_CORE_EVENT_H_
#define MAILLENS_CORE_EVENT_H_

#include <array>
#include <cstdint>
#include <string_view>

namespace maillens::core {

// What a line says, as far as the parser understood it. Names (KindName) are stable: they are
// stored, searched (`kind:`), and counted in metrics.
enum class Kind : uint8_t {
  kUnparsed = 0,  // header read (maybe), message not understood; raw line still kept
  kMalformed,     // not even a syslog header
  // smtpd (and submission/smtps services)
  kConnect,         // connect from host[ip]
  kDisconnect,      // disconnect from host[ip] ehlo=1 ... commands=N
  kLostConnection,  // lost connection after STAGE from host[ip]
  kTimeout,         // timeout after STAGE from host[ip]
  kClient,          // QID: client=host[ip], sasl_method=, sasl_username=
  kReject,          // NOQUEUE|QID: reject|defer: STAGE from host[ip]: code dsn reason; from= to=
  kCheckAction,     // QID: hold|discard|filter|redirect|warn|info|prepend|replace: ... (smtpd
                    // access, cleanup header/body checks, milter-*)
  kSaslFailed,      // warning: host[ip]: SASL METHOD authentication failed: reason
  kTlsEstablished,  // ... TLS connection established from|to host[ip]: proto with cipher
  kSmtpdOther,      // other smtpd chatter we recognise (too many errors, non-SMTP command, ...)
  // postscreen, dnsblog, anvil, tlsproxy, scache, verify
  kPostscreenConnect,
  kPostscreenPass,       // PASS NEW|OLD
  kPostscreenListed,     // WHITELISTED/ALLOWLISTED/BLACKLISTED/DENYLISTED
  kPostscreenViolation,  // PREGREET, HANGUP, BARE NEWLINE, COMMAND PIPELINING, NON-SMTP ...
  kPostscreenDnsbl,      // DNSBL rank N for [ip]:port
  kPostscreenDisconnect,
  kDnsblListed,  // dnsblog: addr IP listed by domain D as A
  kAnvilStats,
  kStatistics,  // scache/verify/postscreen cache statistics
  // queue life
  kMessageId,     // cleanup: message-id=<...> (also resent-message-id)
  kPickup,        // pickup: uid=N from=<...>
  kQueued,        // qmgr: from=<...>, size=N, nrcpt=N (queue active)
  kRemoved,       // qmgr/postsuper: removed
  kExpired,       // qmgr: from=<>, status=expired, returned to sender
  kDelivery,      // smtp/lmtp/local/virtual/pipe/error/discard/retry: to=<...> status=...
  kDeliveryNote,  // smtp: host X said ..., lost connection with ..., connect to X: ...
  kNotification,  // bounce/defer/trace: QID: sender non-delivery|delay|... notification: QID2
  kPostsuper,     // postsuper: QID: placed on hold|released from hold|requeued|removed
  kMaster,        // master: daemon started|reload|terminating
  kLogMessage,    // other warning:/error:/fatal:/panic: lines (severity tells which)
  // other programs on a mail host
  kDovecotDelivery,  // dovecot lmtp/lda: saved mail to MAILBOX / msgid=
  kDovecotAuth,      // dovecot login and auth failures
  kAmavis,           // amavis: Passed|Blocked ...
  kCount_,
};

std::string_view KindName(Kind kind);

// Parsed fields, named as Postfix names them in its logs (FieldName). Kept in one array so the
// JSON writer, the wire format and the store treat every field the same way.
enum class Field : uint8_t {
  kFrom = 0,
  kTo,
  kOrigTo,
  kRelay,  // "host[ip]:port", "local", "none", "host[/path/socket]"
  kRelayHost,
  kRelayIp,
  kRelayPort,
  kDelay,
  kDelays,  // "a/b/c/d"
  kDsn,
  kStatus,  // sent, deferred, bounced, expired, undeliverable, ...
  kReply,   // text inside the parentheses after status=, or the SMTP reply
  kSize,
  kNrcpt,
  kMessageId,
  kResentMessageId,
  kClient,  // "host[ip]:port" as logged
  kClientHost,
  kClientIp,
  kClientPort,
  kSaslMethod,
  kSaslUsername,
  kSaslSender,
  kProto,
  kHelo,
  kAction,  // reject, defer, hold, discard, filter, redirect, warn, info, prepend, ...
  kStage,   // RCPT, DATA, END-OF-MESSAGE, CONNECT, header, body, ...
  kCode,    // SMTP reply code: "550"
  kReason,  // reject/warning reason text
  kUid,
  kOrigQueueId,    // for notifications: the original message's QID; for re-injection: unused
  kNoticeQueueId,  // bounce/defer/trace: the notification's own queue ID
  kCommands,       // disconnect command counts: "ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5"
  kTlsProtocol,
  kTlsCipher,
  kDetail,   // kind-specific text: postscreen violation name, master version, ...
  kMailbox,  // dovecot: INBOX
  kUser,     // dovecot/amavis user
  kCount_,
};

inline constexpr int kFieldCount = static_cast<int>(Field::kCount_);

std::string_view FieldName(Field field);

enum class TimestampForm : uint8_t { kNone = 0, kClassic, kRfc3339 };

enum class QueueIdForm : uint8_t { kNone = 0, kShort, kLong, kNoQueue };

// Which reply form the next-hop queue ID (queued_as) came from; mirrors maillens.v1.NextHopForm.
enum class NextHopForm : uint8_t {
  kNone = 0,
  kPostfix,
  kContentFilter,
  kAmavis,
  kExim,
  kSendmail,
  kMicrosoft,
  kGmail,
  kForwarded,
  kOther,
};

std::string_view NextHopFormName(NextHopForm form);

enum class Severity : uint8_t { kInfo = 0, kWarning, kError, kFatal, kPanic };

std::string_view SeverityName(Severity severity);

struct Event {
  Kind kind = Kind::kUnparsed;
  TimestampForm ts_form = TimestampForm::kNone;
  QueueIdForm queue_id_form = QueueIdForm::kNone;
  NextHopForm queued_as_form = NextHopForm::kNone;
  Severity severity = Severity::kInfo;

  int64_t time_us = 0;  // UTC microseconds since the epoch; 0 when ts_form is kNone
  int64_t pid = -1;     // -1 when absent

  std::string_view host;       // syslog host field ("" when the line has none)
  std::string_view program;    // "postfix-dmz/submission/smtpd", "dovecot", "amavis"
  std::string_view daemon;     // last component of program: "smtpd"
  std::string_view message;    // text after "program[pid]: "
  std::string_view queue_id;   // "3mPVKl0Mhjz7sXv", "17CCA8044", "NOQUEUE", or ""
  std::string_view queued_as;  // next hop's queue ID from the reply, or ""

  std::array<std::string_view, kFieldCount> fields{};

  // A field is present when its view points into the line, even if empty: `from=<>` (the null
  // sender) is present and empty; a default-constructed view (data() == nullptr) is absent.
  std::string_view Get(Field f) const { return fields[static_cast<int>(f)]; }
  void Set(Field f, std::string_view v) { fields[static_cast<int>(f)] = v; }
  bool Has(Field f) const { return Get(f).data() != nullptr; }
};

}  // namespace maillens::core

#endif  // MAILLENS_CORE_EVENT_H_
