// Queue family: cleanup, pickup, qmgr, the delivery agents, bounce/defer/trace, postsuper and
// master/postfix-script. See core/message_parser.h for the contract: `rest` is the message
// after the severity and "QUEUEID: " prefixes. Fields are views into it, except a few
// normalized tags (detail=host_said|lost_connection|... of notes, detail=start|reload|stop of
// master, action=warning when the severity was stripped) that are static strings: they outlive any
// line, and are never an offset into it.
#include "core/message_parser.h"
#include "core/next_hop.h"
#include "core/queue_id.h"
#include "core/scan.h"

namespace maillens::core {
namespace {

constexpr size_t kNpos = std::string_view::npos;

std::string_view TrimRight(std::string_view s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

bool IsKeyChar(char c) { return (c >= 'a' && c <= 'z') || c == '_' || c == '-'; }

// "5.7.1", "4.4.2", "2.0.0": the enhanced status code of RFC 3463.
bool IsDsn(std::string_view t) {
  size_t i = 0;
  for (int part = 0; part < 3; ++part) {
    size_t start = i;
    while (i < t.size() && IsDigit(t[i])) ++i;
    if (i == start || i - start > 3) return false;
    if (part < 2) {
      if (i >= t.size() || t[i] != '.') return false;
      ++i;
    }
  }
  return i == t.size();
}

// Splits "host[ip]:port" (or "none", "local", "host[/path/socket]") into the relay fields.
void SetRelay(std::string_view relay, Event* ev) {
  ev->Set(Field::kRelay, relay);
  if (relay == "none" || relay.empty()) return;
  HostAddress addr;
  SplitHostAddress(relay, &addr);
  ev->Set(Field::kRelayHost, addr.host);
  if (addr.ip.data() != nullptr) ev->Set(Field::kRelayIp, addr.ip);
  if (addr.port.data() != nullptr) ev->Set(Field::kRelayPort, addr.port);
}

void SetRelayFromAddress(std::string_view whole, const HostAddress& addr, Event* ev) {
  ev->Set(Field::kRelay, whole);
  ev->Set(Field::kRelayHost, addr.host);
  if (addr.ip.data() != nullptr) ev->Set(Field::kRelayIp, addr.ip);
  if (addr.port.data() != nullptr) ev->Set(Field::kRelayPort, addr.port);
}

void SetClient(std::string_view client, Event* ev) {
  ev->Set(Field::kClient, client);
  if (client.empty() || client == "local" || client == "unknown") return;
  HostAddress addr;
  SplitHostAddress(client, &addr);
  ev->Set(Field::kClientHost, addr.host);
  if (addr.ip.data() != nullptr) ev->Set(Field::kClientIp, addr.ip);
  if (addr.port.data() != nullptr) ev->Set(Field::kClientPort, addr.port);
}

// An SMTP reply: "550 5.7.1 text" or "550-5.7.1 text". Sets the code, and the DSN when
// `set_dsn` (delivery records carry their own dsn=); returns the text after them.
std::string_view ReadReplyCode(std::string_view reply, bool set_dsn, Event* ev) {
  std::string_view rest = reply;
  if (rest.size() >= 4 && IsDigit(rest[0]) && IsDigit(rest[1]) && IsDigit(rest[2]) &&
      (rest[3] == ' ' || rest[3] == '-')) {
    ev->Set(Field::kCode, rest.substr(0, 3));
    rest.remove_prefix(4);
  }
  size_t space = rest.find(' ');
  std::string_view token = rest.substr(0, space);
  if (!token.empty() && token[0] == '#') token.remove_prefix(1);  // qmail's "(#4.3.0)" style
  if (IsDsn(token)) {
    if (set_dsn) ev->Set(Field::kDsn, token);
    rest.remove_prefix(space == kNpos ? rest.size() : space + 1);
  }
  return rest;
}

// Removes a trailing "(in reply to RCPT TO command)" and sets the stage from it.
std::string_view StripInReplyTo(std::string_view response, Event* ev) {
  std::string_view r = TrimRight(response);
  constexpr std::string_view kOpen = "(in reply to ";
  constexpr std::string_view kClose = " command)";
  if (!EndsWith(r, kClose)) return response;
  size_t open = r.rfind(kOpen);
  if (open == kNpos) return response;
  size_t stage_start = open + kOpen.size();
  size_t stage_end = r.size() - kClose.size();
  if (stage_end <= stage_start) return response;
  ev->Set(Field::kStage, r.substr(stage_start, stage_end - stage_start));
  return TrimRight(r.substr(0, open));
}

// The text inside "status=deferred (...)": a remote reply ("host X[ip] said: 450 ...") or a
// local explanation. Sets code and stage when the text holds them; the reply field keeps the
// whole text.
void ReadDeliveryReply(std::string_view reply, Event* ev) {
  ev->Set(Field::kReply, reply);
  std::string_view r = reply;
  Consume(&r, "delivery temporarily suspended: ");
  if (Consume(&r, "host ")) {
    HostAddress addr;
    std::string_view whole;
    if (!ConsumeHostAddress(&r, &whole, &addr)) return;
    if (!Consume(&r, " said: ") && !Consume(&r, " refused to talk to me: ")) return;
  }
  ReadReplyCode(r, /*set_dsn=*/false, ev);
  StripInReplyTo(r, ev);
}

// Reads one item of a ", "-separated record ("to=<a>, relay=x, delay=1"). An angle-bracket
// value runs to the '>' that is followed by ',' or the end (addresses may hold ", " when
// quoted); other values stop at ',' or ' '. "status=" takes the whole remainder. Returns
// false, leaving `*s`, when `*s` does not start with `key=`.
bool NextCommaItem(std::string_view* s, std::string_view* key, std::string_view* value) {
  std::string_view t = *s;
  size_t eq = 0;
  while (eq < t.size() && IsKeyChar(t[eq])) ++eq;
  if (eq == 0 || eq >= t.size() || t[eq] != '=') return false;
  *key = t.substr(0, eq);
  t.remove_prefix(eq + 1);
  if (*key == "status") {
    *value = t;
    s->remove_prefix(s->size());
    return true;
  }
  size_t next;
  if (!t.empty() && t[0] == '<') {
    size_t close = t.find('>', 1);
    while (close != kNpos && close + 1 < t.size() && t[close + 1] != ',') {
      close = t.find('>', close + 1);
    }
    if (close == kNpos) {  // unterminated (a truncated line): everything after '<'
      *value = t.substr(1);
      s->remove_prefix(s->size());
      return true;
    }
    *value = t.substr(1, close - 1);
    next = close + 1;
  } else {
    // A plain loop: find_first_of calls memchr once per character.
    size_t end = 0;
    while (end < t.size() && t[end] != ',' && t[end] != ' ') ++end;
    *value = t.substr(0, end);
    next = end;
  }
  t.remove_prefix(next);
  if (StartsWith(t, ", ")) {
    t.remove_prefix(2);
  } else {
    t = t.substr(t.size());  // anything else ends the record: " (queue active)", garbage
  }
  *s = t;
  return true;
}

// "sent (250 2.0.0 Ok: queued as X)", "expired, returned to sender", "deferred".
void ReadStatus(std::string_view value, Event* ev) {
  size_t n = 0;
  while (n < value.size() && value[n] != ' ' && value[n] != ',' && value[n] != '(') ++n;
  std::string_view status = value.substr(0, n);
  ev->Set(Field::kStatus, status);
  std::string_view rest = value.substr(n);
  if (Consume(&rest, " (")) {
    std::string_view reply = TrimRight(rest);
    if (!reply.empty() && reply.back() == ')') reply.remove_suffix(1);
    ReadDeliveryReply(reply, ev);
    if (status == "sent") {
      std::string_view id;
      NextHopForm form = ExtractNextHop(reply, &id);
      if (form != NextHopForm::kNone) {
        ev->queued_as = id;
        ev->queued_as_form = form;
      }
    }
  } else if (Consume(&rest, ", ")) {
    ev->Set(Field::kReason, TrimRight(rest));
  }
}

// The common record of the delivery agents and qmgr: "to=<a>, orig_to=<b>, relay=...,
// delay=..., delays=..., dsn=..., status=..." and "from=<a>, size=N, nrcpt=N (queue active)".
// Returns which keys were seen, as a bit mask of the Record bits.
enum RecordBits : unsigned {
  kSawTo = 1u << 0,
  kSawFrom = 1u << 1,
  kSawStatus = 1u << 2,
  kSawSize = 1u << 3,
  kSawRelay = 1u << 4,
};

unsigned ReadRecord(std::string_view rest, Event* ev) {
  unsigned seen = 0;
  std::string_view key;
  std::string_view value;
  while (!rest.empty() && NextCommaItem(&rest, &key, &value)) {
    switch (key.size() > 0 ? key[0] : '\0') {
      case 't':
        if (key == "to") {
          ev->Set(Field::kTo, value);
          seen |= kSawTo;
        }
        break;
      case 'o':
        if (key == "orig_to") ev->Set(Field::kOrigTo, value);
        break;
      case 'f':
        if (key == "from") {
          ev->Set(Field::kFrom, value);
          seen |= kSawFrom;
        }
        break;
      case 'r':
        if (key == "relay") {
          SetRelay(value, ev);
          seen |= kSawRelay;
        }
        break;
      case 'd':
        if (key == "delay") {
          ev->Set(Field::kDelay, value);
        } else if (key == "delays") {
          ev->Set(Field::kDelays, value);
        } else if (key == "dsn") {
          ev->Set(Field::kDsn, value);
        }
        break;
      case 's':
        if (key == "status") {
          ReadStatus(value, ev);
          seen |= kSawStatus;
        } else if (key == "size") {
          ev->Set(Field::kSize, value);
          seen |= kSawSize;
        }
        break;
      case 'n':
        if (key == "nrcpt") ev->Set(Field::kNrcpt, value);
        break;
      default:
        break;  // conn_use=, tls=, and whatever later Postfix versions add
    }
  }
  return seen;
}

// "Untrusted TLS connection established to host[ip]:25: TLSv1.3 with cipher X (256/256 bits)"
// (also "... connection reused to ..."). The trust level goes to detail.
bool ParseTlsTo(std::string_view rest, Event* ev) {
  constexpr std::string_view kEstablished = " TLS connection established to ";
  constexpr std::string_view kReused = " TLS connection reused to ";
  size_t pos = rest.find(kEstablished);
  size_t skip = kEstablished.size();
  if (pos == kNpos) {
    pos = rest.find(kReused);
    skip = kReused.size();
  }
  if (pos == kNpos || pos > 16) return false;
  std::string_view trust = rest.substr(0, pos);
  std::string_view t = rest.substr(pos + skip);
  std::string_view whole;
  HostAddress addr;
  if (!ConsumeHostAddress(&t, &whole, &addr)) return false;
  ev->kind = Kind::kTlsEstablished;
  ev->Set(Field::kDetail, trust);
  SetRelayFromAddress(whole, addr, ev);
  if (Consume(&t, ": ")) {
    std::string_view protocol;
    if (SplitOnce(&t, " with cipher ", &protocol)) {
      ev->Set(Field::kTlsProtocol, protocol);
      ev->Set(Field::kTlsCipher, t.substr(0, t.find(' ')));
    }
  }
  return true;
}

// Reads "host[ip]" or "host[ip]:port" into the relay fields.
bool ReadRelayAddress(std::string_view* t, Event* ev) {
  std::string_view whole;
  HostAddress addr;
  if (!ConsumeHostAddress(t, &whole, &addr)) return false;
  SetRelayFromAddress(whole, addr, ev);
  return true;
}

void SetNote(std::string_view detail, Event* ev) {
  ev->kind = Kind::kDeliveryNote;
  ev->Set(Field::kDetail, detail);
}

// A remote reply inside a note: "450 4.7.1 <a>: Greylisted (in reply to RCPT TO command)".
void ReadNoteReply(std::string_view response, Event* ev) {
  std::string_view text = StripInReplyTo(response, ev);
  ev->Set(Field::kReply, text);
  ReadReplyCode(text, /*set_dsn=*/true, ev);
}

// Delivery-agent chatter that is not a delivery record. Detail names the kind of note.
bool ParseDeliveryNote(std::string_view rest, Event* ev) {
  std::string_view t = rest;
  if (Consume(&t, "host ")) {
    if (!ReadRelayAddress(&t, ev)) return false;
    if (Consume(&t, " said: ")) {
      SetNote("host_said", ev);
      ReadNoteReply(t, ev);
    } else if (Consume(&t, " refused to talk to me: ")) {
      SetNote("refused", ev);
      ReadNoteReply(t, ev);
    } else {
      SetNote("host", ev);  // "greeted me with my own hostname", ...
      Consume(&t, " ");
      ev->Set(Field::kReason, t);
    }
    return true;
  }
  if (Consume(&t, "lost connection with ")) {
    if (!ReadRelayAddress(&t, ev)) return false;
    SetNote("lost_connection", ev);
    if (Consume(&t, " while ")) ev->Set(Field::kReason, t);
    return true;
  }
  if (Consume(&t, "conversation with ")) {
    if (!ReadRelayAddress(&t, ev)) return false;
    SetNote("timeout", ev);
    if (Consume(&t, " timed out while ")) ev->Set(Field::kReason, t);
    return true;
  }
  if (Consume(&t, "connect to ")) {
    if (!ReadRelayAddress(&t, ev)) return false;
    SetNote("connect_failed", ev);
    if (Consume(&t, ": ")) ev->Set(Field::kReason, t);
    return true;
  }
  if (Consume(&t, "SSL_connect error to ")) {
    if (!ReadRelayAddress(&t, ev)) return false;
    SetNote("ssl_error", ev);
    if (Consume(&t, ": ")) ev->Set(Field::kReason, t);
    return true;
  }
  if (Consume(&t, "enabling PIX workarounds: ")) {
    SetNote("pix_workarounds", ev);
    size_t for_pos = t.rfind(" for ");
    if (for_pos == kNpos) {
      ev->Set(Field::kReason, t);
      return true;
    }
    ev->Set(Field::kReason, t.substr(0, for_pos));
    std::string_view host = t.substr(for_pos + 5);
    ReadRelayAddress(&host, ev);
    return true;
  }
  if (Consume(&t, "discarding EHLO keywords: ")) {
    SetNote("ehlo_keywords", ev);
    ev->Set(Field::kReason, t);
    return true;
  }
  if (Consume(&t, "SASL authentication failed; server ")) {
    if (!ReadRelayAddress(&t, ev)) return false;
    SetNote("sasl_failed", ev);
    if (Consume(&t, " said: ")) ReadNoteReply(t, ev);
    return true;
  }
  if (Consume(&t, "Cannot start TLS: ")) {
    SetNote("tls_failed", ev);
    ev->Set(Field::kReason, t);
    return true;
  }
  constexpr std::string_view kCertFailed = "certificate verification failed for ";
  size_t cert = t.find(kCertFailed);
  if (cert != kNpos && cert <= 7) {  // "certificate ..." or "server certificate ..."
    t.remove_prefix(cert + kCertFailed.size());
    if (!ReadRelayAddress(&t, ev)) return false;
    SetNote("cert_failed", ev);
    if (Consume(&t, ": ")) ev->Set(Field::kReason, t);
    return true;
  }
  constexpr std::string_view kNotOffered = " is required, but was not offered by host ";
  size_t offered = t.find(kNotOffered);
  if (offered != kNpos && offered <= 10) {  // "TLS is required, ...", "SMTPUTF8 is required"
    ev->Set(Field::kReason, t.substr(0, offered));
    t.remove_prefix(offered + kNotOffered.size());
    if (!ReadRelayAddress(&t, ev)) return false;
    SetNote("not_offered", ev);
    return true;
  }
  return false;
}

// Header/body checks and milters, as cleanup(8) logs them:
//   ACTION: CLASS CONTENT from CLIENT; from=<a> to=<b> proto=P helo=<h>[: TEXT]
//   milter-ACTION: EVENT from CLIENT: TEXT; from=<a> to=<b> proto=P helo=<h>
//   milter-CLASS-ACTION: CLASS CONTENT from CLIENT; from=<a> ...[: TEXT]
// CLIENT is "name[addr]" or "local". The action is stored without its "milter-" prefix so a
// milter reject and a header_checks reject both read action=reject.
bool IsCheckAction(std::string_view a) {
  switch (a.empty() ? '\0' : a[0]) {
    case 'b':
      return a == "bcc";
    case 'd':
      return a == "discard" || a == "dunno";
    case 'f':
      return a == "filter";
    case 'h':
      return a == "hold";
    case 'i':
      return a == "info" || a == "ignore";
    case 'p':
      return a == "prepend";
    case 'r':
      return a == "reject" || a == "redirect" || a == "replace";
    case 's':
      return a == "strip";
    case 'w':
      return a == "warning" || a == "warn";
    default:
      return false;
  }
}

// Sequential "from=<a> to=<b> proto=P helo=<h>" (space separated), then an optional ": TEXT".
// Returns the TEXT (absent view when there is none).
std::string_view ReadSpaceRecord(std::string_view t, Event* ev) {
  while (!t.empty()) {
    size_t eq = 0;
    while (eq < t.size() && IsKeyChar(t[eq])) ++eq;
    if (eq == 0 || eq >= t.size() || t[eq] != '=') return {};
    std::string_view key = t.substr(0, eq);
    t.remove_prefix(eq + 1);
    std::string_view value;
    size_t next;
    if (!t.empty() && t[0] == '<') {
      size_t close = t.find('>', 1);
      while (close != kNpos && close + 1 < t.size() && t[close + 1] != ' ' && t[close + 1] != ':') {
        close = t.find('>', close + 1);
      }
      if (close == kNpos) {
        value = t.substr(1);
        next = t.size();
      } else {
        value = t.substr(1, close - 1);
        next = close + 1;
      }
    } else {
      size_t end = t.find(' ');
      size_t colon = t.find(": ");
      if (colon < end) end = colon;
      if (end == kNpos) end = t.size();
      value = t.substr(0, end);
      next = end;
    }
    if (key == "from") {
      ev->Set(Field::kFrom, value);
    } else if (key == "to") {
      ev->Set(Field::kTo, value);
    } else if (key == "proto") {
      ev->Set(Field::kProto, value);
    } else if (key == "helo") {
      ev->Set(Field::kHelo, value);
    }
    t.remove_prefix(next);
    if (Consume(&t, ": ")) return t;
    if (!Consume(&t, " ")) return {};
  }
  return {};
}

// Where the "; from=<...> to=<...>" record starts (the position of ';'), or npos.
size_t FindRecordStart(std::string_view t) {
  for (std::string_view marker : {"; from=<", "; to=<", "; proto=", "; helo=<"}) {
    size_t pos = t.find(marker);
    if (pos != kNpos) return pos;
  }
  return kNpos;
}

void SetCheckAction(std::string_view action, Event* ev) {
  ev->kind = action == "reject" ? Kind::kReject : Kind::kCheckAction;
  ev->Set(Field::kAction, action);
}

// The reason text of a reject/hold: "5.7.1 Blocked by SpamAssassin" or "550 5.7.1 text".
void ReadActionText(std::string_view text, Event* ev) {
  ev->Set(Field::kReason, ReadReplyCode(text, /*set_dsn=*/true, ev));
}

// `logged` is the word before the first ": " ("reject", "milter-reject", ...), `t` the rest.
bool ParseCheckAction(std::string_view logged, std::string_view t, Event* ev) {
  std::string_view action = logged;
  bool milter_event = false;  // "milter-reject: END-OF-MESSAGE from host[ip]: text; ..."
  if (Consume(&action, "milter-")) {
    if (Consume(&action, "header-") || Consume(&action, "body-")) {
      // milter_header_checks: same layout as header_checks.
    } else {
      milter_event = true;
    }
  }
  if (!IsCheckAction(action)) return false;
  size_t space = t.find(' ');
  if (space == kNpos) return false;
  std::string_view stage = t.substr(0, space);
  size_t record = FindRecordStart(t);
  std::string_view head = t.substr(0, record);
  std::string_view tail = record == kNpos ? std::string_view() : t.substr(record + 2);

  if (milter_event) {
    // EVENT from CLIENT: TEXT
    if (space > head.size()) return false;  // the record started inside the first word
    std::string_view h = head.substr(space);
    if (!Consume(&h, " from ")) return false;
    std::string_view whole;
    HostAddress addr;
    if (!ConsumeHostAddress(&h, &whole, &addr)) return false;
    SetCheckAction(action, ev);
    ev->Set(Field::kStage, stage);
    SetClient(whole, ev);
    if (Consume(&h, ": ")) ReadActionText(h, ev);
    if (tail.data() != nullptr) ReadSpaceRecord(tail, ev);
    return true;
  }

  // CLASS CONTENT from CLIENT; the content may itself contain " from ", the client is last.
  std::string_view h = head;
  if (!h.empty() && h.back() == ';') h.remove_suffix(1);  // no sender/recipient recorded
  size_t from = h.rfind(" from ");
  if (from == kNpos || from < space) return false;
  std::string_view client = h.substr(from + 6);
  SetCheckAction(action, ev);
  ev->Set(Field::kStage, stage);
  ev->Set(Field::kDetail, h.substr(space + 1, from > space ? from - space - 1 : 0));
  SetClient(client, ev);
  if (tail.data() == nullptr) return true;
  std::string_view text = ReadSpaceRecord(tail, ev);
  if (text.data() == nullptr) return true;
  if (action == "reject") {
    ReadActionText(text, ev);
  } else {
    ev->Set(Field::kReason, text);  // redirect/filter target, prepended header, warning text
  }
  return true;
}

// "<x>" → "x"; "<x>+junk" → "x"; "<truncated" → "truncated"; "bare text" → itself.
std::string_view MessageIdValue(std::string_view v) {
  v = TrimRight(v);
  if (v.empty() || v[0] != '<') return v;
  size_t close = v.find('>');
  if (close == kNpos) return v.substr(1);
  return v.substr(1, close - 1);
}

void SetNotice(std::string_view recipient, std::string_view what, std::string_view id, Event* ev) {
  ev->kind = Kind::kNotification;
  ev->Set(Field::kAction, recipient);
  ev->Set(Field::kDetail, what);
  ev->Set(Field::kNoticeQueueId, id);
  if (!ev->queue_id.empty()) ev->Set(Field::kOrigQueueId, ev->queue_id);
}

}  // namespace

bool ParseCleanup(std::string_view rest, Event* ev) {
  std::string_view t = rest;
  if (Consume(&t, "message-id=")) {
    ev->kind = Kind::kMessageId;
    ev->Set(Field::kMessageId, MessageIdValue(t));
    return true;
  }
  if (Consume(&t, "resent-message-id=")) {
    ev->kind = Kind::kMessageId;
    ev->Set(Field::kResentMessageId, MessageIdValue(t));
    return true;
  }
  // "warning: header ..." reaches us with its prefix when Postfix logged the queue ID first
  // ("QID: warning: header ..."); if a log put the severity first, it was already stripped.
  if (ev->severity == Severity::kWarning && (StartsWith(t, "header ") || StartsWith(t, "body "))) {
    return ParseCheckAction("warning", t, ev);
  }
  size_t colon = t.find(": ");
  if (colon == kNpos || colon > 40) return false;
  return ParseCheckAction(t.substr(0, colon), t.substr(colon + 2), ev);
}

bool ParsePickup(std::string_view rest, Event* ev) {
  std::string_view uid = FindValue(rest, "uid");
  std::string_view from = FindValue(rest, "from");
  if (uid.data() == nullptr || from.data() == nullptr) return false;
  ev->kind = Kind::kPickup;
  ev->Set(Field::kUid, uid);
  ev->Set(Field::kFrom, from);
  std::string_view orig_id = FindValue(rest, "orig_id");
  if (orig_id.data() != nullptr) ev->Set(Field::kOrigQueueId, orig_id);
  return true;
}

bool ParseQmgr(std::string_view rest, Event* ev) {
  std::string_view t = TrimRight(rest);
  if (t == "removed") {
    ev->kind = Kind::kRemoved;
    return true;
  }
  if (StartsWith(t, "to=")) return ParseDelivery(rest, ev);
  if (t == "skipped, still being delivered") {
    // qmgr found the queue file busy (another delivery agent holds it): a note on the queue.
    ev->kind = Kind::kDeliveryNote;
    ev->Set(Field::kDetail, t.substr(0, 7));
    ev->Set(Field::kReason, t);
    return true;
  }
  if (!StartsWith(t, "from=")) return false;
  unsigned seen = ReadRecord(t, ev);
  if (seen & kSawStatus) {
    ev->kind = Kind::kExpired;  // "status=expired, returned to sender" (or force-expired)
    return true;
  }
  if (seen & kSawSize) {
    ev->kind = Kind::kQueued;
    return true;
  }
  return false;
}

bool ParseDelivery(std::string_view rest, Event* ev) {
  if (StartsWith(rest, "to=")) {
    ReadRecord(rest, ev);
    ev->kind = Kind::kDelivery;
    return true;
  }
  // Notes and TLS lines are informational; a warning that happens to look alike is not.
  if (ev->severity != Severity::kInfo) return false;
  // The shared TLS parser (core/parse_smtpd.cc) first; ParseTlsTo also takes "TLS connection
  // reused to ..." and lines the shared one leaves (no cipher part).
  if (ParseTlsEstablished(rest, ev) || ParseTlsTo(rest, ev)) return true;
  return ParseDeliveryNote(rest, ev);
}

bool ParseBounce(std::string_view rest, Event* ev) {
  // "sender non-delivery notification: QID2", "postmaster delay notification: QID2", ...
  std::string_view t = TrimRight(rest);
  std::string_view recipient;
  if (!SplitOnce(&t, " ", &recipient)) return false;
  if (recipient != "sender" && recipient != "postmaster") return false;
  std::string_view what;
  if (!SplitOnce(&t, " notification: ", &what)) return false;
  if (what != "non-delivery" && what != "delay" && what != "delivery status") return false;
  if (ClassifyQueueId(t) == QueueIdForm::kNone) return false;
  SetNotice(recipient, what, t, ev);
  return true;
}

bool ParsePostsuper(std::string_view rest, Event* ev) {
  std::string_view t = TrimRight(rest);
  // Per message: "QID: removed", "QID: placed on hold", "QID: released from hold",
  // "QID: requeued", "QID: expired".
  if (!ev->queue_id.empty()) {
    if (t == "removed" || t == "placed on hold" || t == "released from hold" || t == "requeued" ||
        t == "expired") {
      ev->kind = Kind::kPostsuper;
      ev->Set(Field::kDetail, t);
      return true;
    }
    return false;
  }
  // Summary: "Deleted: 12 messages", "Requeued: 1 message", "Placed on hold: 3 messages".
  std::string_view what;
  if (!SplitOnce(&t, ": ", &what)) return false;
  if (what != "Deleted" && what != "Placed on hold" && what != "Released from hold" &&
      what != "Requeued" && what != "Expired") {
    return false;
  }
  std::string_view count;
  if (!ConsumeNumber(&t, &count)) return false;
  if (t != " message" && t != " messages") return false;
  ev->kind = Kind::kPostsuper;
  ev->Set(Field::kDetail, what);
  ev->Set(Field::kReason, count);
  return true;
}

bool ParseMaster(std::string_view rest, Event* ev) {
  if (ev->severity != Severity::kInfo) return false;
  std::string_view t = TrimRight(rest);
  std::string_view detail;
  if (Consume(&t, "daemon started -- version ")) {
    detail = "start";
  } else if (Consume(&t, "reload -- version ")) {
    detail = "reload";
  } else if (Consume(&t, "terminating on signal ")) {
    ev->kind = Kind::kMaster;
    ev->Set(Field::kDetail, "stop");
    ev->Set(Field::kReason, t);
    return true;
  } else {
    // postfix-script
    if (t == "starting the Postfix mail system") {
      detail = "start";
    } else if (t == "stopping the Postfix mail system") {
      detail = "stop";
    } else if (t == "refreshing the Postfix mail system") {
      detail = "reload";
    } else if (StartsWith(t, "the Postfix mail system is running")) {
      detail = "running";
    } else if (t == "waiting for the Postfix mail system to terminate") {
      detail = "stop";
    } else {
      return false;
    }
    ev->kind = Kind::kMaster;
    ev->Set(Field::kDetail, detail);
    return true;
  }
  // "3.7.11, configuration /etc/postfix"
  ev->kind = Kind::kMaster;
  ev->Set(Field::kDetail, detail);
  ev->Set(Field::kReason, t.substr(0, t.find(',')));
  return true;
}

}  // namespace maillens::core
