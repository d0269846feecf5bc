// The smtpd family: smtpd (under any service name), postscreen, dnsblog, anvil, tlsproxy,
// scache and verify. See core/message_parser.h for the contract every family parser keeps.
//
// Everything here is string_view scanning over the message: no allocation, no regex. Each
// parser dispatches on the first byte of `rest` and then checks a literal prefix, so a line
// costs a switch, one or two compares and a single left-to-right walk over its variable part.
// Every field set is a view into `rest` (and so into the line), never a literal.
#include <string_view>

#include "core/message_parser.h"
#include "core/next_hop.h"
#include "core/scan.h"

namespace maillens::core {
namespace {

constexpr size_t kNpos = std::string_view::npos;

bool IsLower(char c) { return c >= 'a' && c <= 'z'; }

// The first `n` bytes of `s` (all of it when shorter).
std::string_view Head(std::string_view s, size_t n) { return s.substr(0, n); }

// Text up to the first space (or all of `*s`); `*s` is left at the space.
std::string_view TakeWord(std::string_view* s) {
  size_t end = s->find(' ');
  if (end == kNpos) end = s->size();
  std::string_view word = s->substr(0, end);
  s->remove_prefix(end);
  return word;
}

// Sets the client fields from a parsed "host[ip]:port". The host is left absent when the
// daemon logs none (postscreen's "[ip]:port").
void SetClient(std::string_view whole, const HostAddress& a, Event* ev) {
  ev->Set(Field::kClient, whole);
  if (!a.host.empty()) ev->Set(Field::kClientHost, a.host);
  if (a.ip.data() != nullptr) ev->Set(Field::kClientIp, a.ip);
  if (!a.port.empty()) ev->Set(Field::kClientPort, a.port);
}

// Reads "host[ip]" / "host[ip]:port" / "[ip]:port" at the start of `*s` into the client
// fields.
bool ConsumeClient(std::string_view* s, Event* ev) {
  std::string_view whole;
  HostAddress a;
  if (!ConsumeHostAddress(s, &whole, &a)) return false;
  SetClient(whole, a, ev);
  return true;
}

void SetRelay(std::string_view whole, const HostAddress& a, Event* ev) {
  ev->Set(Field::kRelay, whole);
  if (!a.host.empty()) ev->Set(Field::kRelayHost, a.host);
  if (a.ip.data() != nullptr) ev->Set(Field::kRelayIp, a.ip);
  if (!a.port.empty()) ev->Set(Field::kRelayPort, a.port);
}

// Reads "STAGE[ (N bytes)] from host[ip]" (smtpd's "... after STAGE from CLIENT").
bool ConsumeStageFromClient(std::string_view* s, Event* ev) {
  std::string_view t = *s;
  std::string_view stage = TakeWord(&t);
  if (stage.empty()) return false;
  if (Consume(&t, " (")) {
    std::string_view bytes;
    if (ConsumeNumber(&t, &bytes) && Consume(&t, " bytes)")) ev->Set(Field::kSize, bytes);
  }
  if (!Consume(&t, " from ")) return false;
  if (!ConsumeClient(&t, ev)) return false;
  ev->Set(Field::kStage, stage);
  *s = t;
  return true;
}

// Sets kReason to the text after ": " when `rest` continues that way.
void SetTrailingReason(std::string_view rest, Event* ev) {
  if (Consume(&rest, ": ")) {
    ev->Set(Field::kReason, rest);
  } else if (rest == ":") {
    ev->Set(Field::kReason, rest.substr(1));
  }
}

// Where the "; from=<...> to=<...> proto=... helo=<...>" tail of an access-check line
// starts (the position of "; "), or npos. Postfix leaves out from= and to= when unknown, so
// the tail starts at the first of the four keys.
size_t FindCheckTail(std::string_view body) {
  size_t pos = 0;
  while ((pos = body.find("; ", pos)) != kNpos) {
    std::string_view after = body.substr(pos + 2);
    if (StartsWith(after, "from=<") || StartsWith(after, "to=<") || StartsWith(after, "proto=") ||
        StartsWith(after, "helo=")) {
      return pos;
    }
    pos += 2;
  }
  return kNpos;
}

// "550", "5.7.1": a reply code (three digits) and an enhanced status code (digit, dot, up to
// three digits, dot, up to three digits), each followed by a space or the end.
size_t CodeLength(std::string_view s) {
  if (s.size() < 3 || !IsDigit(s[0]) || !IsDigit(s[1]) || !IsDigit(s[2])) return 0;
  if (s.size() > 3 && s[3] != ' ') return 0;
  return 3;
}

size_t DsnLength(std::string_view s) {
  if (s.size() < 5 || !IsDigit(s[0]) || s[1] != '.') return 0;
  size_t i = 2;
  size_t start = i;
  while (i < s.size() && i - start < 3 && IsDigit(s[i])) ++i;
  if (i == start || i >= s.size() || s[i] != '.') return 0;
  ++i;
  start = i;
  while (i < s.size() && i - start < 3 && IsDigit(s[i])) ++i;
  if (i == start || (i < s.size() && s[i] != ' ')) return 0;
  return i;
}

// Splits an SMTP reply as smtpd logs it: "554 5.7.1 <a@b>: Recipient address rejected:
// reason". kReply is the whole reply; kCode and kDsn when present; kDetail the object the
// check was about (inside "<...>: ", or the "[...]" of a DNSBL reply "Service unavailable;
// Client host [ip] blocked using list; url"); kReason the rest of the text.
void SetReply(std::string_view reply, Event* ev) {
  ev->Set(Field::kReply, reply);
  std::string_view text = reply;
  if (size_t n = CodeLength(text); n > 0) {
    ev->Set(Field::kCode, text.substr(0, n));
    text.remove_prefix(n);
    Consume(&text, " ");
  }
  if (size_t n = DsnLength(text); n > 0) {
    ev->Set(Field::kDsn, text.substr(0, n));
    text.remove_prefix(n);
    Consume(&text, " ");
  }
  if (!text.empty() && text[0] == '<') {
    size_t close = text.find(">: ");
    if (close != kNpos) {
      ev->Set(Field::kDetail, text.substr(1, close - 1));
      text.remove_prefix(close + 3);
    }
  } else if (StartsWith(text, "Service unavailable; ")) {
    size_t open = text.find(" [", 21);
    size_t close = open == kNpos ? kNpos : text.find("] ", open + 2);
    if (close != kNpos) {
      ev->Set(Field::kDetail, text.substr(open + 2, close - open - 2));
      text.remove_prefix(close + 2);
    }
  }
  ev->Set(Field::kReason, text);
}

// Actions that mean the client was refused; every other access or milter action (warn,
// reject_warning, hold, discard, filter, redirect, proxy-accept, ...) is a kCheckAction.
bool IsRejectAction(std::string_view action) {
  return action == "reject" || action == "defer" || action == "milter-reject" ||
         action == "proxy-reject";
}

// "ACTION: STAGE from CLIENT: REPLY; from=<s> to=<r> proto=P helo=<h>" (smtpd access checks,
// smtpd milters, postscreen) and "proxy-ACTION: STAGE: REPLY; from=..." (before-queue
// filters).
bool ParseCheckLine(std::string_view rest, Event* ev) {
  size_t i = 0;
  while (i < rest.size() && i < 24 && (IsLower(rest[i]) || rest[i] == '_' || rest[i] == '-')) {
    ++i;
  }
  if (i == 0 || i + 2 > rest.size() || rest[i] != ':' || rest[i + 1] != ' ') return false;
  std::string_view action = rest.substr(0, i);
  std::string_view s = rest.substr(i + 2);
  size_t j = 0;
  while (j < s.size() && s[j] != ' ' && s[j] != ':') ++j;
  if (j == 0) return false;
  std::string_view stage = s.substr(0, j);
  s.remove_prefix(j);
  if (Consume(&s, " from ")) {
    if (!ConsumeClient(&s, ev)) return false;
    if (!Consume(&s, ": ") && !s.empty()) return false;
  } else if (!Consume(&s, ": ")) {
    return false;
  }
  std::string_view reply = s;
  size_t tail = FindCheckTail(s);
  if (tail != kNpos) {
    reply = s.substr(0, tail);
    std::string_view kv = s.substr(tail + 2);
    if (std::string_view v = FindValue(kv, "from"); v.data() != nullptr) ev->Set(Field::kFrom, v);
    if (std::string_view v = FindValue(kv, "to"); v.data() != nullptr) ev->Set(Field::kTo, v);
    if (std::string_view v = FindValue(kv, "proto"); v.data() != nullptr) {
      ev->Set(Field::kProto, v);
    }
    if (std::string_view v = FindValue(kv, "helo"); v.data() != nullptr) ev->Set(Field::kHelo, v);
  }
  SetReply(reply, ev);
  if (StartsWith(action, "proxy-")) {
    ev->queued_as_form = ExtractNextHop(reply, &ev->queued_as);
  }
  ev->Set(Field::kAction, action);
  ev->Set(Field::kStage, stage);
  ev->kind = IsRejectAction(action) ? Kind::kReject : Kind::kCheckAction;
  return true;
}

// "client=host[ip][:port][, sasl_method=M, sasl_username=U, sasl_sender=S]" and the
// re-injection form "client=host[ip], orig_queue_id=QID, orig_client=host[ip]".
bool ParseClientLine(std::string_view rest, Event* ev) {
  std::string_view s = rest;
  if (!Consume(&s, "client=") || !ConsumeClient(&s, ev)) return false;
  if (!s.empty()) {
    if (std::string_view v = FindValue(s, "sasl_method"); v.data() != nullptr) {
      ev->Set(Field::kSaslMethod, v);
    }
    if (std::string_view v = FindValue(s, "sasl_username"); v.data() != nullptr) {
      ev->Set(Field::kSaslUsername, v);
    }
    if (std::string_view v = FindValue(s, "sasl_sender"); v.data() != nullptr) {
      ev->Set(Field::kSaslSender, v);
    }
    if (std::string_view v = FindValue(s, "orig_queue_id"); v.data() != nullptr) {
      ev->Set(Field::kOrigQueueId, v);
    }
  }
  ev->kind = Kind::kClient;
  return true;
}

// "host[ip]: SASL METHOD authentication failed: REASON[, sasl_username=U]".
bool ParseSaslFailed(std::string_view rest, Event* ev) {
  std::string_view s = rest;
  std::string_view whole;
  HostAddress a;
  if (!ConsumeHostAddress(&s, &whole, &a) || !Consume(&s, ": SASL ")) return false;
  size_t end = s.find(" authentication failed");
  if (end == kNpos) return false;
  std::string_view method = s.substr(0, end);
  s.remove_prefix(end + 22);
  if (!s.empty() && !Consume(&s, ": ") && s != ":") return false;
  if (s == ":") s.remove_prefix(1);
  size_t user = s.rfind(", sasl_username=");
  if (user != kNpos) {
    ev->Set(Field::kSaslUsername, s.substr(user + 16));
    s = s.substr(0, user);
  }
  SetClient(whole, a, ev);
  ev->Set(Field::kSaslMethod, method);
  ev->Set(Field::kReason, s);
  ev->kind = Kind::kSaslFailed;
  return true;
}

// "IP: address not listed for hostname HOST" and "IP: hostname HOST verification failed:
// REASON" (smtpd's reverse-DNS checks).
bool ParseAddressWarning(std::string_view rest, Event* ev) {
  size_t colon = rest.find(": ");
  if (colon == kNpos || colon == 0 || colon > 45) return false;
  std::string_view ip = rest.substr(0, colon);
  std::string_view s = rest.substr(colon + 2);
  std::string_view detail = s;
  if (Consume(&s, "address not listed for hostname ")) {
    ev->Set(Field::kClientHost, TakeWord(&s));
    ev->Set(Field::kDetail, Head(detail, 31));
  } else if (Consume(&s, "hostname ")) {
    std::string_view host = TakeWord(&s);
    if (!StartsWith(s, " verification failed")) return false;
    ev->Set(Field::kClientHost, host);
    ev->Set(Field::kDetail, s.substr(1, 19));
    s.remove_prefix(20);
    SetTrailingReason(s, ev);
  } else {
    return false;
  }
  ev->Set(Field::kClientIp, ip);
  ev->kind = Kind::kSmtpdOther;
  return true;
}

// "hostname HOST does not resolve to address IP[: REASON]".
bool ParseHostnameWarning(std::string_view rest, Event* ev) {
  std::string_view s = rest;
  if (!Consume(&s, "hostname ")) return false;
  std::string_view host = TakeWord(&s);
  if (!Consume(&s, " ")) return false;
  std::string_view detail = s;
  if (!Consume(&s, "does not resolve to address ")) return false;
  size_t end = s.find(": ");
  std::string_view ip = s.substr(0, end);
  if (ip.empty()) return false;
  ev->Set(Field::kClientHost, host);
  ev->Set(Field::kClientIp, ip);
  ev->Set(Field::kDetail, Head(detail, 27));
  if (end != kNpos) ev->Set(Field::kReason, s.substr(end + 2));
  ev->kind = Kind::kSmtpdOther;
  return true;
}

// "PHRASE after STAGE from CLIENT[: TEXT]": too many errors, improper command pipelining,
// bare <LF> received.
bool ParseAfterStage(std::string_view rest, std::string_view phrase, Event* ev) {
  std::string_view s = rest;
  if (!Consume(&s, phrase) || !Consume(&s, " after ")) return false;
  if (!ConsumeStageFromClient(&s, ev)) return false;
  ev->Set(Field::kDetail, Head(rest, phrase.size()));
  SetTrailingReason(s, ev);
  ev->kind = Kind::kSmtpdOther;
  return true;
}

// "PHRASE from CLIENT[: TEXT]": SSL_accept error, non-SMTP command.
bool ParseFromClient(std::string_view rest, std::string_view phrase, Event* ev) {
  std::string_view s = rest;
  if (!Consume(&s, phrase) || !Consume(&s, " from ")) return false;
  if (!ConsumeClient(&s, ev)) return false;
  ev->Set(Field::kDetail, Head(rest, phrase.size()));
  SetTrailingReason(s, ev);
  ev->kind = Kind::kSmtpdOther;
  return true;
}

// "Illegal address syntax from CLIENT in MAIL command: ADDRESS".
bool ParseIllegalAddress(std::string_view rest, Event* ev) {
  constexpr std::string_view kPhrase = "Illegal address syntax";
  std::string_view s = rest;
  if (!Consume(&s, kPhrase) || !Consume(&s, " from ") || !ConsumeClient(&s, ev)) return false;
  if (Consume(&s, " in ")) {
    std::string_view stage = TakeWord(&s);
    if (!stage.empty()) ev->Set(Field::kStage, stage);
    if (Consume(&s, " command")) SetTrailingReason(s, ev);
  }
  ev->Set(Field::kDetail, Head(rest, kPhrase.size()));
  ev->kind = Kind::kSmtpdOther;
  return true;
}

// anvil's limits as smtpd reports them: "Connection rate limit exceeded: 31 from CLIENT for
// service smtpd" (also concurrency, message delivery request rate, recipient address rate,
// new TLS session rate).
bool ParseLimitExceeded(std::string_view rest, Event* ev) {
  size_t pos = rest.find(" limit exceeded: ");
  if (pos == kNpos || pos > 48) return false;
  std::string_view s = rest.substr(pos + 17);
  std::string_view count;
  if (!ConsumeNumber(&s, &count) || !Consume(&s, " from ") || !ConsumeClient(&s, ev)) {
    return false;
  }
  ev->Set(Field::kDetail, rest.substr(0, pos + 15));
  ev->Set(Field::kReason, count);
  ev->kind = Kind::kSmtpdOther;
  return true;
}

bool SetWholeAsDetail(std::string_view rest, Kind kind, Event* ev) {
  ev->Set(Field::kDetail, rest);
  ev->kind = kind;
  return true;
}

// "statistics: TEXT" (scache, postscreen/verify cache) and "cache TYPE:PATH full|partial
// cleanup: retained=N dropped=N entries" (postscreen, verify).
bool ParseStatistics(std::string_view rest, Event* ev) {
  std::string_view s = rest;
  if (Consume(&s, "statistics: ")) return SetWholeAsDetail(s, Kind::kStatistics, ev);
  if (StartsWith(rest, "cache ") && rest.find(" cleanup: ") != kNpos) {
    return SetWholeAsDetail(rest, Kind::kStatistics, ev);
  }
  return false;
}

// postscreen's "NAME[ N][ after T] from [ip]:port[ after STAGE][: TEXT| TEXT]" for every
// violation: PREGREET 14 after 0.31 from ..., HANGUP after 0.5 from ... in tests after SMTP
// handshake, COMMAND PIPELINING from ... after EHLO: text, NON-SMTP COMMAND, BARE NEWLINE,
// COMMAND TIME|COUNT|LENGTH LIMIT, DATA|BDAT without valid RCPT.
bool ParseViolation(std::string_view rest, size_t name_size, Event* ev) {
  std::string_view s = rest.substr(name_size);
  if (s.size() > 1 && s[0] == ' ' && IsDigit(s[1])) {
    s.remove_prefix(1);
    std::string_view count;
    ConsumeNumber(&s, &count);
  }
  if (Consume(&s, " after ")) {
    std::string_view seconds = TakeWord(&s);
    if (!seconds.empty()) ev->Set(Field::kDelay, seconds);
  }
  if (!Consume(&s, " from ") || !ConsumeClient(&s, ev)) return false;
  if (Consume(&s, " after ")) {
    size_t end = s.find(": ");
    if (end == kNpos) end = s.size();
    ev->Set(Field::kStage, s.substr(0, end));
    s.remove_prefix(end);
  }
  if (Consume(&s, ": ") || Consume(&s, " ")) ev->Set(Field::kReason, s);
  ev->Set(Field::kDetail, rest.substr(0, name_size));
  ev->kind = Kind::kPostscreenViolation;
  return true;
}

// "NAME [ip]:port" lines (PASS NEW, WHITELISTED, DISCONNECT, ...).
bool ParseNameClient(std::string_view rest, size_t name_size, std::string_view detail, Kind kind,
                     Event* ev) {
  std::string_view s = rest.substr(name_size);
  if (!Consume(&s, " ") || !ConsumeClient(&s, ev)) return false;
  if (detail.data() != nullptr) ev->Set(Field::kDetail, detail);
  ev->kind = kind;
  return true;
}

// Length of `name` when `rest` starts with it followed by a space, else 0.
size_t NameAt(std::string_view rest, std::string_view name) {
  return rest.size() > name.size() && rest[name.size()] == ' ' && StartsWith(rest, name)
             ? name.size()
             : 0;
}

bool ParsePostscreenUpper(std::string_view rest, Event* ev) {
  constexpr std::string_view kViolations[] = {"PREGREET",
                                              "HANGUP",
                                              "COMMAND PIPELINING",
                                              "COMMAND TIME LIMIT",
                                              "COMMAND COUNT LIMIT",
                                              "COMMAND LENGTH LIMIT",
                                              "NON-SMTP COMMAND",
                                              "BARE NEWLINE",
                                              "DATA without valid RCPT",
                                              "BDAT without valid RCPT"};
  constexpr std::string_view kListed[] = {"WHITELISTED", "ALLOWLISTED",    "BLACKLISTED",
                                          "DENYLISTED",  "WHITELIST VETO", "ALLOWLIST VETO"};
  std::string_view s = rest;
  switch (rest[0]) {
    case 'C':
      if (Consume(&s, "CONNECT from ")) {
        if (!ConsumeClient(&s, ev)) return false;
        if (Consume(&s, " to ")) ev->Set(Field::kDetail, s);
        ev->kind = Kind::kPostscreenConnect;
        return true;
      }
      break;
    case 'D':
      if (size_t n = NameAt(rest, "DISCONNECT"); n > 0) {
        return ParseNameClient(rest, n, {}, Kind::kPostscreenDisconnect, ev);
      }
      if (Consume(&s, "DNSBL rank ")) {
        std::string_view rank;
        if (!ConsumeNumber(&s, &rank) || !Consume(&s, " for ") || !ConsumeClient(&s, ev)) {
          return false;
        }
        ev->Set(Field::kDetail, rank);
        ev->kind = Kind::kPostscreenDnsbl;
        return true;
      }
      break;
    case 'P':
      if (size_t n = NameAt(rest, "PASS NEW"); n > 0) {
        return ParseNameClient(rest, n, rest.substr(5, 3), Kind::kPostscreenPass, ev);
      }
      if (size_t n = NameAt(rest, "PASS OLD"); n > 0) {
        return ParseNameClient(rest, n, rest.substr(5, 3), Kind::kPostscreenPass, ev);
      }
      break;
    default:
      break;
  }
  for (std::string_view name : kListed) {
    if (size_t n = NameAt(rest, name); n > 0) {
      return ParseNameClient(rest, n, rest.substr(0, n), Kind::kPostscreenListed, ev);
    }
  }
  for (std::string_view name : kViolations) {
    if (size_t n = NameAt(rest, name); n > 0) return ParseViolation(rest, n, ev);
  }
  return false;
}

// "[ip]:port" or "ip" inside anvil's "(service:address)": the service is a master.cf name
// ("smtpd", "submission") or a "host:port" listener ("127.0.0.1:2525", "[::1]:2525").
std::string_view AnvilAddress(std::string_view ident) {
  size_t sep;
  if (!ident.empty() && ident[0] == '[') {
    size_t close = ident.find("]:");
    if (close == kNpos) return {};
    sep = ident.find(':', close + 2);
  } else {
    sep = ident.find(':');
    if (sep != kNpos && ident.substr(0, sep).find('.') != kNpos) sep = ident.find(':', sep + 1);
  }
  if (sep == kNpos) return {};
  return ident.substr(sep + 1);
}

}  // namespace

bool ParseTlsEstablished(std::string_view rest, Event* ev) {
  std::string_view s = rest;
  // Postfix 2.x wrote no trust level: "TLS connection established from ...".
  std::string_view level;
  if (!StartsWith(s, "TLS ")) {
    level = TakeWord(&s);
    if (level != "Anonymous" && level != "Trusted" && level != "Untrusted" && level != "Verified") {
      return false;
    }
    if (!Consume(&s, " ")) return false;
  }
  if (!Consume(&s, "TLS connection established ")) return false;
  bool to = Consume(&s, "to ");
  if (!to && !Consume(&s, "from ")) return false;
  std::string_view whole;
  HostAddress a;
  if (!ConsumeHostAddress(&s, &whole, &a) || !Consume(&s, ": ")) return false;
  size_t with = s.find(" with cipher ");
  if (with == kNpos) return false;
  if (to) {
    SetRelay(whole, a, ev);
  } else {
    SetClient(whole, a, ev);
  }
  ev->Set(Field::kTlsProtocol, s.substr(0, with));
  s.remove_prefix(with + 13);
  ev->Set(Field::kTlsCipher, TakeWord(&s));
  if (level.data() != nullptr) ev->Set(Field::kDetail, level);
  ev->kind = Kind::kTlsEstablished;
  return true;
}

bool ParseSmtpd(std::string_view rest, Event* ev) {
  if (rest.empty()) return false;
  std::string_view s = rest;
  switch (rest[0]) {
    case 'c':
      if (Consume(&s, "connect from ")) {
        if (!ConsumeClient(&s, ev)) return false;
        ev->kind = Kind::kConnect;
        return true;
      }
      if (StartsWith(rest, "client=")) return ParseClientLine(rest, ev);
      break;
    case 'd':
      if (Consume(&s, "disconnect from ")) {
        if (!ConsumeClient(&s, ev)) return false;
        if (Consume(&s, " ") && !s.empty()) ev->Set(Field::kCommands, s);
        ev->kind = Kind::kDisconnect;
        return true;
      }
      if (Consume(&s, "discarding EHLO keywords: ")) {
        ev->Set(Field::kDetail, Head(rest, 24));
        ev->Set(Field::kReason, s);
        ev->kind = Kind::kSmtpdOther;
        return true;
      }
      break;
    case 'l':
      if (Consume(&s, "lost connection after ")) {
        if (!ConsumeStageFromClient(&s, ev)) return false;
        ev->kind = Kind::kLostConnection;
        return true;
      }
      break;
    case 't':
      if (Consume(&s, "timeout after ")) {
        if (!ConsumeStageFromClient(&s, ev)) return false;
        ev->kind = Kind::kTimeout;
        return true;
      }
      if (ParseAfterStage(rest, "too many errors", ev)) return true;
      if (StartsWith(rest, "table ") && EndsWith(rest, " has changed -- restarting")) {
        return SetWholeAsDetail(rest, Kind::kSmtpdOther, ev);
      }
      break;
    case 'i':
      if (ParseAfterStage(rest, "improper command pipelining", ev)) return true;
      break;
    case 'b':
      if (ParseAfterStage(rest, "bare <LF> received", ev)) return true;
      break;
    case 'n':
      if (ParseFromClient(rest, "non-SMTP command", ev)) return true;
      break;
    case 'h':
      if (ParseHostnameWarning(rest, ev)) return true;
      break;
    case 'S':
      if (ParseFromClient(rest, "SSL_accept error", ev)) return true;
      break;
    case 's':
      if (ParseFromClient(rest, "setting up TLS connection", ev)) return true;
      break;
    case 'I':
      if (ParseIllegalAddress(rest, ev)) return true;
      break;
    case 'A':
    case 'T':
    case 'U':
    case 'V':
      if (ParseTlsEstablished(rest, ev)) return true;
      break;
    default:
      break;
  }
  if (IsLower(rest[0]) && ParseCheckLine(rest, ev)) return true;
  if (ParseSaslFailed(rest, ev)) return true;
  if (ParseLimitExceeded(rest, ev)) return true;
  return ParseAddressWarning(rest, ev);
}

bool ParsePostscreen(std::string_view rest, Event* ev) {
  if (rest.empty()) return false;
  if (rest[0] >= 'A' && rest[0] <= 'Z') return ParsePostscreenUpper(rest, ev);
  if (ParseStatistics(rest, ev)) return true;
  return ParseCheckLine(rest, ev);
}

// "addr IP listed by domain DOMAIN as ANSWER".
bool ParseDnsblog(std::string_view rest, Event* ev) {
  std::string_view s = rest;
  if (!Consume(&s, "addr ")) return false;
  std::string_view ip = TakeWord(&s);
  if (ip.empty() || !Consume(&s, " listed by domain ")) return false;
  std::string_view domain = TakeWord(&s);
  if (domain.empty()) return false;
  ev->Set(Field::kClientIp, ip);
  ev->Set(Field::kDetail, domain);
  if (Consume(&s, " as ")) ev->Set(Field::kReason, s);
  ev->kind = Kind::kDnsblListed;
  return true;
}

// "statistics: max connection rate 1/60s for (smtpd:192.0.2.1) at Oct 26 18:13:50" and the
// count, message rate, recipient rate, newtls rate and cache size forms. kDetail is the
// statistic's name ("max connection rate"), kReason its value ("1/60s").
bool ParseAnvil(std::string_view rest, Event* ev) {
  std::string_view s = rest;
  if (!Consume(&s, "statistics: ")) return false;
  if (!StartsWith(s, "max ")) return ParseStatistics(rest, ev);
  size_t value_at = 4;
  while (value_at < s.size() && !IsDigit(s[value_at])) ++value_at;
  if (value_at >= s.size() || s[value_at - 1] != ' ') return false;
  std::string_view name = s.substr(0, value_at - 1);
  s.remove_prefix(value_at);
  std::string_view value = TakeWord(&s);
  if (Consume(&s, " for (")) {
    size_t close = s.find(") at ");
    if (close == kNpos) close = s.rfind(')');
    if (close == kNpos) return false;
    std::string_view ip = AnvilAddress(s.substr(0, close));
    if (!ip.empty()) ev->Set(Field::kClientIp, ip);
  }
  ev->Set(Field::kDetail, name);
  ev->Set(Field::kReason, value);
  ev->kind = Kind::kAnvilStats;
  return true;
}

// tlsproxy: "CONNECT from [ip]:port" and "DISCONNECT [ip]:port" (kConnect / kDisconnect; the
// daemon tells them apart from smtpd's), TLS established lines, "TLS handshake failed for
// service=smtpd peer=[ip]:port" and "ciphertext read/write timeout for [ip]:port".
bool ParseTlsproxy(std::string_view rest, Event* ev) {
  if (rest.empty()) return false;
  std::string_view s = rest;
  switch (rest[0]) {
    case 'C':
      if (Consume(&s, "CONNECT from ")) {
        if (!ConsumeClient(&s, ev)) return false;
        ev->kind = Kind::kConnect;
        return true;
      }
      break;
    case 'D':
      if (Consume(&s, "DISCONNECT ")) {
        if (!ConsumeClient(&s, ev)) return false;
        ev->kind = Kind::kDisconnect;
        return true;
      }
      break;
    case 'T':
      if (Consume(&s, "TLS handshake failed for ")) {
        size_t peer = s.find("peer=");
        if (peer == kNpos) return false;
        std::string_view p = s.substr(peer + 5);
        if (!ConsumeClient(&p, ev)) return false;
        ev->Set(Field::kDetail, Head(rest, 20));
        ev->kind = Kind::kSmtpdOther;
        return true;
      }
      break;
    case 'c':
      if (Consume(&s, "ciphertext read/write timeout for ")) {
        if (!ConsumeClient(&s, ev)) return false;
        ev->Set(Field::kDetail, Head(rest, 29));
        ev->kind = Kind::kSmtpdOther;
        return true;
      }
      break;
    default:
      break;
  }
  return ParseTlsEstablished(rest, ev);
}

bool ParseScache(std::string_view rest, Event* ev) { return ParseStatistics(rest, ev); }

bool ParseVerify(std::string_view rest, Event* ev) { return ParseStatistics(rest, ev); }

}  // namespace maillens::core
