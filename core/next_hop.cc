#include "core/next_hop.h"

#include "core/queue_id.h"
#include "core/scan.h"

namespace maillens::core {
namespace {

constexpr size_t kNpos = std::string_view::npos;

// Punctuation that ends a sentence or closes a bracket after an ID ("queued as X)." ); it is
// never part of the IDs we look for.
bool IsTrailingPunct(char c) {
  return c == ')' || c == '.' || c == ',' || c == ';' || c == ':' || c == ']' || c == '>' ||
         c == '"' || c == '\'';
}

bool IsSpace(char c) { return c == ' ' || c == '\t'; }

std::string_view StripTrailingPunct(std::string_view t) {
  while (!t.empty() && IsTrailingPunct(t.back())) t.remove_suffix(1);
  return t;
}

// The token that starts `s` (up to white space), without trailing punctuation.
std::string_view TokenAt(std::string_view s) {
  size_t n = 0;
  while (n < s.size() && !IsSpace(s[n])) ++n;
  return StripTrailingPunct(s.substr(0, n));
}

// The token that ends just before `end` (spaces before `end` skipped).
std::string_view TokenBefore(std::string_view s, size_t end) {
  size_t e = end;
  while (e > 0 && IsSpace(s[e - 1])) --e;
  size_t b = e;
  while (b > 0 && !IsSpace(s[b - 1])) --b;
  return s.substr(b, e - b);
}

// The token right after the first occurrence of `marker`, or an empty view.
std::string_view TokenAfter(std::string_view s, std::string_view marker) {
  size_t pos = s.find(marker);
  if (pos == kNpos) return {};
  return TokenAt(s.substr(pos + marker.size()));
}

std::string_view TrimTrailingSpace(std::string_view s) {
  while (!s.empty() && (IsSpace(s.back()) || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

size_t CountChar(std::string_view s, char c) {
  size_t n = 0;
  for (char x : s) n += x == c ? 1 : 0;
  return n;
}

// Not empty, not a bare reply code ("250") and not a word of the reply ("OK", "Ok").
bool IsIdToken(std::string_view t) {
  if (t.empty() || t == "OK" || t == "Ok" || t == "ok") return false;
  for (char c : t) {
    if (!IsDigit(c)) return true;
  }
  return t.size() > 3;
}

// Postfix's own smtpd reply, exactly: "250 2.0.0 Ok: queued as <queue ID>" and nothing after.
// Anything else that says "queued as" is some other MTA (or a Postfix behind a proxy that
// rewrote the reply) and is reported as kOther.
bool IsPostfixReply(std::string_view reply, std::string_view id) {
  constexpr std::string_view kPrefix = "250 2.0.0 Ok: queued as ";
  if (!StartsWith(reply, kPrefix)) return false;
  if (TrimTrailingSpace(reply.substr(kPrefix.size())) != id) return false;
  QueueIdForm form = ClassifyQueueId(id);
  return form == QueueIdForm::kShort || form == QueueIdForm::kLong;
}

// All forms except the content-filter wrapper, which ExtractNextHop unwraps first.
NextHopForm ExtractDirect(std::string_view reply, std::string_view* queue_id) {
  std::string_view id;

  // amavisd-new's own log ("..., queued_as: 4PbCb40W49z3tG3, 80 ms").
  id = TokenAfter(reply, "queued_as: ");
  if (!id.empty()) {
    *queue_id = id;
    return NextHopForm::kAmavis;
  }

  // local(8) forwarding through a .forward or alias: a new queue file on this host.
  id = TokenAfter(reply, "forwarded as ");
  if (!id.empty()) {
    *queue_id = id;
    return NextHopForm::kForwarded;
  }

  id = TokenAfter(reply, "queued as ");
  if (id.empty()) id = TokenAfter(reply, "Queued as ");
  if (!id.empty()) {
    *queue_id = id;
    return IsPostfixReply(reply, id) ? NextHopForm::kPostfix : NextHopForm::kOther;
  }

  // Every form below is a remote SMTP server's success reply.
  if (!StartsWith(reply, "250")) return NextHopForm::kNone;

  // Exchange / Exchange Online: the InternalId is the ID in Exchange's message tracking log;
  // the message-id in the same reply is not the next hop's ID.
  constexpr std::string_view kInternalId = "[InternalId=";
  size_t internal = reply.find(kInternalId);
  if (internal != kNpos) {
    std::string_view rest = reply.substr(internal + kInternalId.size());
    size_t n = 0;
    while (n < rest.size() && IsDigit(rest[n])) ++n;
    if (n > 0) {
      *queue_id = rest.substr(0, n);
      return NextHopForm::kMicrosoft;
    }
  }

  // Gmail: "250 2.0.0 OK  1700000000 a1b2c3d4e5f.12 - gsmtp".
  size_t gsmtp = reply.find(" - gsmtp");
  if (gsmtp != kNpos) {
    id = TokenBefore(reply, gsmtp);
    if (IsIdToken(id)) {
      *queue_id = id;
      return NextHopForm::kGmail;
    }
  }

  // Sendmail: "250 2.0.0 x9ABC123012345 Message accepted for delivery".
  size_t accepted = reply.find(" Message accepted for delivery");
  if (accepted != kNpos) {
    id = TokenBefore(reply, accepted);
    if (IsIdToken(id) && id.find('.') == kNpos) {
      *queue_id = id;
      return NextHopForm::kSendmail;
    }
  }
  // The same shape with other wording ("... mail accepted for delivery").
  accepted = reply.find(" mail accepted for delivery");
  if (accepted != kNpos) {
    id = TokenBefore(reply, accepted);
    if (IsIdToken(id) && id.find('.') == kNpos) {
      *queue_id = id;
      return NextHopForm::kOther;
    }
  }

  // Exim: "250 OK id=1qABCd-0001Xy-2Z" (6-6-2, or 6-11-4 since Exim 4.97).
  size_t exim = reply.find("K id=");
  if (exim != kNpos && exim > 0 && (reply[exim - 1] == 'O' || reply[exim - 1] == 'o')) {
    id = TokenAt(reply.substr(exim + 5));  // "K id="
    if (!id.empty()) {
      *queue_id = id;
      return CountChar(id, '-') == 2 ? NextHopForm::kExim : NextHopForm::kOther;
    }
  }
  // Other "...: id=X" replies (GMX/web.de: "250 Requested mail action okay, completed: id=X").
  id = TokenAfter(reply, ": id=");
  if (!id.empty()) {
    *queue_id = id;
    return NextHopForm::kOther;
  }

  // Cisco IronPort: "250 ok:  Message 7295650 accepted".
  size_t message = reply.find("Message ");
  if (message != kNpos) {
    std::string_view rest = reply.substr(message + 8);  // "Message "
    size_t n = 0;
    while (n < rest.size() && IsDigit(rest[n])) ++n;
    if (n > 0 && StartsWith(rest.substr(n), " accepted")) {
      *queue_id = rest.substr(0, n);
      return NextHopForm::kOther;
    }
  }

  // Dovecot LMTP: "250 2.0.0 <rcpt> SESSION Saved"; the session ID is the one Dovecot logs
  // its delivery under ("lmtp(user)<pid><SESSION>: msgid=...: saved mail to INBOX").
  std::string_view trimmed = TrimTrailingSpace(reply);
  if (EndsWith(trimmed, " Saved")) {
    id = TokenBefore(trimmed, trimmed.size() - 6);  // " Saved"
    if (!id.empty() && id[0] != '<' && id.back() != '>') {
      *queue_id = id;
      return NextHopForm::kOther;
    }
  }

  // Amazon SES: "250 Ok 0100018...-000000" (a single long dashed token after "Ok").
  if (StartsWith(trimmed, "250 Ok ")) {
    std::string_view rest = trimmed.substr(7);  // "250 Ok "
    if (rest.size() >= 30 && rest.find(' ') == kNpos && CountChar(rest, '-') >= 2) {
      *queue_id = rest;
      return NextHopForm::kOther;
    }
  }
  return NextHopForm::kNone;
}

}  // namespace

NextHopForm ExtractNextHop(std::string_view reply, std::string_view* queue_id) {
  // A content filter proxies the reply of the MTA it re-injects into:
  // "250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): 250 2.0.0 Ok: queued as X".
  size_t mta = reply.find("from MTA(");
  if (mta != kNpos) {
    size_t close = reply.find("): ", mta);
    if (close == kNpos) return NextHopForm::kNone;
    std::string_view id;
    if (ExtractDirect(reply.substr(close + 3), &id) == NextHopForm::kNone) {
      return NextHopForm::kNone;
    }
    *queue_id = id;
    return NextHopForm::kContentFilter;
  }
  return ExtractDirect(reply, queue_id);
}

}  // namespace maillens::core
