// Other programs on a mail host: Dovecot (LMTP/LDA deliveries and Sieve actions, login,
// passdb and userdb results), as syslog lines or from its own log file, and amavisd-new
// (Passed/Blocked). See core/message_parser.h for the contract. Fields are views into the line
// except the normalized tags action=login|disconnect|passdb|userdb, the Sieve
// action=store|discard|redirect|reject|vacation and
// status=saved|failed|discarded|redirected|rejected|replied, which are static strings.
#include "core/message_parser.h"
#include "core/next_hop.h"
#include "core/queue_id.h"
#include "core/scan.h"
#include "core/syslog_header.h"

namespace maillens::core {
namespace {

constexpr size_t kNpos = std::string_view::npos;

std::string_view TrimRight(std::string_view s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || IsDigit(c) || c == '-' || c == '_';
}

// "'INBOX'" → "INBOX".
std::string_view Unquote(std::string_view s) {
  if (s.size() >= 2 && (s[0] == '\'' || s[0] == '"') && s.back() == s[0]) {
    return s.substr(1, s.size() - 2);
  }
  return s;
}

// Reads "<text>" at the start of `*s`; false (leaving `*s`) when it is not there.
bool ConsumeAngle(std::string_view* s, std::string_view* inside) {
  if (s->empty() || (*s)[0] != '<') return false;
  size_t close = s->find('>');
  if (close == kNpos) return false;
  *inside = s->substr(1, close - 1);
  s->remove_prefix(close + 1);
  return true;
}

// ---- Dovecot ------------------------------------------------------------------------------

// "imap-login: Login: user=<u>, method=PLAIN, rip=IP, lip=IP, mpid=N, TLS, session=<s>"
// "pop3-login: Disconnected (auth failed, 1 attempts in 6 secs): user=<u>, method=..., rip=..."
// The text before the key=value list says what happened; it becomes the reason.
bool ParseLogin(std::string_view component, std::string_view t, Event* ev) {
  if (!Consume(&t, ": ")) return false;
  Consume(&t, "Info: ");
  size_t start = kNpos;
  for (std::string_view marker : {": user=", ": method=", ": rip="}) {
    size_t pos = t.find(marker);
    if (pos < start) start = pos;
  }
  if (start == kNpos) return false;
  std::string_view what = t.substr(0, start);
  std::string_view kv = t.substr(start + 2);
  std::string_view rip = FindValue(kv, "rip");
  if (rip.data() == nullptr) return false;
  ev->kind = Kind::kDovecotAuth;
  ev->Set(Field::kDetail, component);
  if (what == "Login") {
    ev->Set(Field::kAction, "login");
  } else {
    ev->Set(Field::kAction, "disconnect");  // "Disconnected ...", "Aborted login ...", ...
    ev->Set(Field::kReason, what);
  }
  ev->Set(Field::kClientIp, rip);
  std::string_view user = FindValue(kv, "user");
  if (user.data() != nullptr) ev->Set(Field::kUser, user);
  std::string_view method = FindValue(kv, "method");
  if (method.data() != nullptr) ev->Set(Field::kSaslMethod, method);
  return true;
}

// A passdb/userdb result: "pam(user,1.2.3.4): unknown user",
// "sql(user,1.2.3.4,<session>): Password mismatch", possibly after "auth-worker(123): " and
// "conn unix:auth-worker (pid=1,uid=2): auth-worker<55>: ". The first "name(a,b...): " whose
// arguments hold a comma is the one.
bool ParsePassdb(std::string_view t, Event* ev) {
  size_t pos = 0;
  while ((pos = t.find("): ", pos)) != kNpos) {
    size_t open = t.rfind('(', pos);
    size_t name_start = open;
    while (open != kNpos && name_start > 0 && IsNameChar(t[name_start - 1])) --name_start;
    if (open != kNpos && name_start < open &&
        (name_start == 0 || t[name_start - 1] == ' ' || t[name_start - 1] == ':')) {
      std::string_view args = t.substr(open + 1, pos - open - 1);
      size_t comma = args.find(',');
      // A userdb lookup names no address: "passwd-file(ghost@example.org): unknown user" is
      // LMTP or LDA asking for a recipient Dovecot does not know (it then refuses it at RCPT).
      if (comma == kNpos && !args.empty() && StartsWith(t.substr(pos + 3), "unknown user")) {
        ev->kind = Kind::kDovecotAuth;
        ev->Set(Field::kAction, "userdb");
        ev->Set(Field::kDetail, t.substr(name_start, open - name_start));
        ev->Set(Field::kUser, args);
        ev->Set(Field::kReason, t.substr(pos + 3));
        return true;
      }
      if (comma != kNpos) {
        ev->kind = Kind::kDovecotAuth;
        ev->Set(Field::kAction, "passdb");
        ev->Set(Field::kDetail, t.substr(name_start, open - name_start));
        ev->Set(Field::kUser, args.substr(0, comma));
        std::string_view ip = args.substr(comma + 1);
        ip = ip.substr(0, ip.find(','));
        if (!ip.empty()) ev->Set(Field::kClientIp, ip);
        ev->Set(Field::kReason, t.substr(pos + 3));
        return true;
      }
    }
    pos += 3;
  }
  return false;
}

// "pam_unix(dovecot:auth): authentication failure; logname= uid=0 euid=0 tty=dovecot
// ruser=x rhost=1.2.3.4  user=root"
bool ParsePamUnix(std::string_view t, Event* ev) {
  std::string_view name = t.substr(0, 8);  // "pam_unix"
  if (!Consume(&t, "pam_unix(dovecot:auth): ")) return false;
  std::string_view reason;
  if (!SplitOnce(&t, "; ", &reason)) return false;
  std::string_view rhost = FindValue(t, "rhost");
  if (rhost.data() == nullptr) return false;
  ev->kind = Kind::kDovecotAuth;
  ev->Set(Field::kAction, "passdb");
  ev->Set(Field::kDetail, name);
  ev->Set(Field::kReason, reason);
  if (!rhost.empty()) ev->Set(Field::kClientIp, rhost);
  std::string_view user = FindValue(t, "user");
  if (user.data() == nullptr || user.empty()) user = FindValue(t, "ruser");
  if (user.data() != nullptr) ev->Set(Field::kUser, user);
  return true;
}

// What a delivery line says after "msgid=<m>: ", Dovecot's own words ("saved mail to INBOX")
// or Pigeonhole's for a Sieve action, lower case or, in newer versions, capitalised.
struct DeliveryAction {
  std::string_view status;  // saved, failed, discarded, redirected, rejected, replied
  std::string_view action;  // the Sieve action, or "" for Dovecot's own delivery
  std::string_view mailbox;
  std::string_view to;  // the address a redirect, reject or vacation reply went to
  std::string_view reason;
};

// "X" or "X: reason" (a failure names the mailbox first).
void MailboxAndReason(std::string_view t, DeliveryAction* out) {
  size_t colon = t.find(": ");
  out->mailbox = t.substr(0, colon);
  if (colon != kNpos) out->reason = t.substr(colon + 2);
}

// Consumes `phrase` at the start of `*t`, its first letter in either case.
bool ConsumePhrase(std::string_view* t, std::string_view phrase) {
  if (t->size() < phrase.size() || t->empty()) return false;
  char first = (*t)[0];
  if (first != phrase[0] && first != phrase[0] - 'a' + 'A') return false;
  if (t->substr(1, phrase.size() - 1) != phrase.substr(1)) return false;
  t->remove_prefix(phrase.size());
  return true;
}

bool ReadDeliveryAction(std::string_view t, DeliveryAction* out) {
  // Older Pigeonhole names the Sieve command first: "fileinto action: stored mail into
  // mailbox 'Junk'", "keep action: stored mail into mailbox 'INBOX'".
  if (!ConsumePhrase(&t, "fileinto action: ")) ConsumePhrase(&t, "keep action: ");
  if (ConsumePhrase(&t, "saved mail to ")) {
    out->status = "saved";
    out->mailbox = t;
  } else if (ConsumePhrase(&t, "stored mail into mailbox ")) {
    out->status = "saved";
    out->action = "store";
    out->mailbox = t;
  } else if (ConsumePhrase(&t, "save failed to open mailbox ") ||
             ConsumePhrase(&t, "save failed to ")) {
    out->status = "failed";
    MailboxAndReason(t, out);
  } else if (ConsumePhrase(&t, "failed to store into mailbox ")) {
    out->status = "failed";
    out->action = "store";
    MailboxAndReason(t, out);
  } else if (ConsumePhrase(&t, "marked message to be discarded if not explicitly delivered")) {
    out->status = "discarded";
    out->action = "discard";
  } else if (ConsumePhrase(&t, "forwarded to ")) {
    out->status = "redirected";
    out->action = "redirect";
    if (!ConsumeAngle(&t, &out->to)) out->to = t;
  } else if (ConsumePhrase(&t, "rejected message from ")) {
    // "rejected message from <sender> (reject)": the refusal goes back to the sender.
    out->status = "rejected";
    out->action = "reject";
    if (!ConsumeAngle(&t, &out->to)) return false;
    if (Consume(&t, " (") && !t.empty() && t.back() == ')') out->reason = t.substr(0, t.size() - 1);
  } else if (ConsumePhrase(&t, "sent vacation response to ")) {
    out->status = "replied";
    out->action = "vacation";
    if (!ConsumeAngle(&t, &out->to)) out->to = t;
  } else {
    return false;
  }
  return true;
}

// "lmtp(user)<pid><session>: msgid=<m>: saved mail to INBOX"
// "lmtp(user)<pid><session>: sieve: msgid=<m>: stored mail into mailbox 'INBOX'"
// "lmtp(user)<pid><session>: sieve: msgid=<m>: forwarded to <x@y>" (redirect), "marked
//   message to be discarded if not explicitly delivered (discard action)", "rejected message
//   from <s> (reject)", "sent vacation response to <s>", "failed to store into mailbox 'X': E"
// "lmtp(user): SESSION: sieve: msgid=<m>: stored mail into mailbox 'INBOX'" (older)
// "lmtp(user)<pid><session>: sieve: msgid=<m>: fileinto action: stored mail into mailbox 'X'"
// "lda(user): msgid=<m>: save failed to INBOX: Quota exceeded"
// and the same with Dovecot's level ("Info: ", "Error: ") after the prefix, as its own log
// file writes them. The session ID is what Dovecot's LMTP reply names ("250 2.0.0 <rcpt>
// SESSION Saved"), so it becomes this event's queue ID: the hop from Postfix's lmtp delivery
// lands here. A Message-ID may hold ">: " (the sender writes it): the action is looked for
// after each one in turn, so a forged one makes the line unparsed rather than misread.
bool ParseDovecotDelivery(std::string_view component, std::string_view t, Event* ev) {
  if (!Consume(&t, "(")) return false;
  size_t close = t.find(')');
  if (close == kNpos) return false;
  std::string_view user = t.substr(0, close);
  t.remove_prefix(close + 1);
  std::string_view session;
  std::string_view pid;
  if (ConsumeAngle(&t, &pid)) ConsumeAngle(&t, &session);
  if (!Consume(&t, ": ")) return false;
  Consume(&t, "Info: ") || Consume(&t, "Warning: ") || Consume(&t, "Error: ");
  if (session.empty()) {
    size_t colon = t.find(": ");
    std::string_view token = t.substr(0, colon);
    if (colon != kNpos && !token.empty() && token != "sieve" && token.find(' ') == kNpos &&
        token.find('=') == kNpos) {
      session = token;
      t.remove_prefix(colon + 2);
    }
  }
  Consume(&t, "sieve: ");  // the Sieve actions say which they are
  if (!Consume(&t, "msgid=")) return false;
  std::string_view msgid;
  DeliveryAction what;
  if (!t.empty() && t[0] == '<') {
    size_t end = 0;
    while (true) {
      end = t.find(">: ", end);
      if (end == kNpos) return false;
      if (ReadDeliveryAction(t.substr(end + 3), &what)) break;
      what = DeliveryAction();
      end += 3;
    }
    msgid = t.substr(1, end - 1);
  } else {
    size_t end = t.find(": ");  // "msgid=unspecified: ..."
    if (end == kNpos || !ReadDeliveryAction(t.substr(end + 2), &what)) return false;
    msgid = t.substr(0, end);
  }
  ev->kind = Kind::kDovecotDelivery;
  ev->Set(Field::kDetail, component);
  ev->Set(Field::kUser, user);
  ev->Set(Field::kMessageId, msgid);
  if (what.mailbox.data() != nullptr) ev->Set(Field::kMailbox, Unquote(what.mailbox));
  ev->Set(Field::kStatus, what.status);
  if (!what.action.empty()) ev->Set(Field::kAction, what.action);
  if (what.to.data() != nullptr) ev->Set(Field::kTo, what.to);
  if (what.reason.data() != nullptr) ev->Set(Field::kReason, what.reason);
  if (ev->queue_id.empty() && !session.empty()) ev->queue_id = session;
  return true;
}

// ---- amavisd-new --------------------------------------------------------------------------

// The value after ", KEY: " within `region`, up to the next ", " (or the end).
std::string_view AmavisValue(std::string_view region, std::string_view key) {
  size_t pos = region.find(key);
  if (pos == kNpos) return {};
  std::string_view v = region.substr(pos + key.size());
  return v.substr(0, v.find(", "));
}

}  // namespace

bool ParseDovecot(std::string_view rest, Event* ev) {
  std::string_view t = TrimRight(rest);
  Consume(&t, "dovecot: ");  // "dovecot[1]: dovecot: auth(default): ..." (nested names)
  Consume(&t, "Info: ");
  size_t n = 0;
  while (n < t.size() && t[n] != '(' && t[n] != ':' && t[n] != ' ' && t[n] != '<') ++n;
  std::string_view component = t.substr(0, n);
  if (component.empty()) return false;
  std::string_view after = t.substr(n);
  if (EndsWith(component, "-login")) return ParseLogin(component, after, ev);
  if (component == "lmtp" || component == "lda" || component == "deliver") {
    return ParseDovecotDelivery(component, after, ev);
  }
  if (StartsWith(component, "auth")) return ParsePassdb(t, ev);
  if (component == "pam_unix") return ParsePamUnix(t, ev);
  return false;
}

bool ParseDovecotLogPath(Event* ev) {
  if (!IsDovecotLogPathLine(ev->host, ev->program, ev->message)) return false;
  // From the program on, the line is what Dovecot sends to syslog after "dovecot: ", with
  // its level, which syslog carries as the priority. Read the same way, it gets the same
  // kind and fields (its level is not a severity here either, as it is not there).
  std::string_view whole(ev->program.data(),
                         ev->message.data() + ev->message.size() - ev->program.data());
  ev->program = DovecotProcess(ev->program);
  ev->daemon = "dovecot";  // as through syslog: daemon:dovecot finds the lines of both
  if (!ParseDovecot(whole, ev)) ev->kind = Kind::kUnparsed;
  return true;
}

// "(459355-16) Passed CLEAN {RelayedInbound}, [1.2.3.4]:5678 [1.2.3.4] <a@b> -> <c@d>,<e@f>,
//  Queue-ID: 3F2A1C, Message-ID: <m@x>, mail_id: AbC, Hits: -1.2, size: 1234,
//  queued_as: 4B3C2D, 1821 ms"
// "Blocked BANNED (.exe,x.scr) {DiscardedInbound,Quarantined}, ..." (older versions have no
// "{...}" and may say "ORIGINATING LOCAL" or "ESMTP/ESMTP" between the addresses.)
bool ParseAmavis(std::string_view rest, Event* ev) {
  std::string_view t = TrimRight(rest);
  if (!t.empty() && t[0] == '(') {  // the amavis log ID, "(459355-16) "
    size_t close = t.find(") ");
    if (close == kNpos) return false;
    t.remove_prefix(close + 2);
  }
  std::string_view action;
  if (StartsWith(t, "Passed ")) {
    action = t.substr(0, 6);
    t.remove_prefix(7);
  } else if (StartsWith(t, "Blocked ")) {
    action = t.substr(0, 7);
    t.remove_prefix(8);
  } else {
    return false;
  }
  size_t n = 0;
  while (n < t.size() && t[n] != ' ' && t[n] != ',') ++n;
  if (n == 0) return false;
  std::string_view category = t.substr(0, n);
  t.remove_prefix(n);
  // The part after "Subject: " is free text; look for our keys only before it.
  std::string_view region = t.substr(0, t.find(", Subject: "));
  size_t arrow = region.find(" -> ");
  if (arrow == kNpos) return false;

  ev->kind = Kind::kAmavis;
  ev->Set(Field::kAction, action);
  ev->Set(Field::kDetail, category);
  std::string_view head = region.substr(0, arrow);
  if (Consume(&head, " (")) {  // "Blocked BANNED (.exe,x.scr) {...}": what was found
    size_t close = head.find(')');
    if (close != kNpos) ev->Set(Field::kReason, head.substr(0, close));
  }
  // Client: the first "[ip]" or "[ip]:port".
  size_t open = head.find('[');
  if (open != kNpos) {
    size_t close = head.find(']', open);
    if (close != kNpos) {
      ev->Set(Field::kClientIp, head.substr(open + 1, close - open - 1));
      std::string_view port = head.substr(close + 1);
      std::string_view digits;
      if (Consume(&port, ":") && ConsumeNumber(&port, &digits)) {
        ev->Set(Field::kClientPort, digits);
      }
    }
  }
  // Sender: the "<...>" that ends right before the arrow.
  if (!head.empty() && head.back() == '>') {
    size_t lt = head.rfind('<');
    if (lt != kNpos) ev->Set(Field::kFrom, head.substr(lt + 1, head.size() - lt - 2));
  }
  // Recipients: "<c@d>,<e@f>, ..."; the first one is kept.
  std::string_view rcpts = region.substr(arrow + 4);
  std::string_view to;
  if (ConsumeAngle(&rcpts, &to)) ev->Set(Field::kTo, to);

  std::string_view queue_id = AmavisValue(rcpts, ", Queue-ID: ");
  if (!queue_id.empty() && ev->queue_id.empty()) {
    ev->queue_id = queue_id;
    ev->queue_id_form = ClassifyQueueId(queue_id);
  }
  constexpr std::string_view kMessageId = ", Message-ID: ";
  size_t mid = rcpts.find(kMessageId);
  if (mid != kNpos) {
    std::string_view m = rcpts.substr(mid + kMessageId.size());
    std::string_view inside;
    if (ConsumeAngle(&m, &inside)) ev->Set(Field::kMessageId, inside);
  }
  std::string_view size = AmavisValue(rcpts, ", size: ");
  if (!size.empty()) ev->Set(Field::kSize, size);
  size_t queued = rcpts.find(", queued_as: ");
  if (queued != kNpos) {
    std::string_view id;
    NextHopForm form = ExtractNextHop(rcpts.substr(queued + 2), &id);
    if (form != NextHopForm::kNone) {
      ev->queued_as = id;
      ev->queued_as_form = form;
    }
  }
  // amavis leaves "Queue-ID:" out when it cannot read it from the Received header (seen for
  // mail submitted locally). The line is still a fact of one message: the one re-injected
  // as queued_as, on this host, moments before this line. Without a queue ID it would be a
  // line of no message, which search matches and counts on its own: the message it reports
  // on would be counted twice.
  if (ev->queue_id.empty() && !ev->queued_as.empty()) {
    QueueIdForm form = ClassifyQueueId(ev->queued_as);
    if (form == QueueIdForm::kShort || form == QueueIdForm::kLong) {
      ev->queue_id = ev->queued_as;
      ev->queue_id_form = form;
    }
  }
  return true;
}

}  // namespace maillens::core
