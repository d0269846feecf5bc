// Message-level parsing: what the text after "program[pid]: " says. Internal to core/; the
// public entry point is ParseLine in core/parser.h.
//
// ParseMessage expects an Event whose header part (program, daemon, message) is filled. It
// strips a severity prefix ("warning: ", "fatal: ", ...) and a queue-ID prefix ("3mPVKl0Mhjz7sXv:
// ", "NOQUEUE: ") into ev->severity / ev->queue_id, then hands the rest to one family parser.
// Family parsers return true when they set a kind; false leaves the event unparsed (or
// kLogMessage when a severity prefix was present). They must never read outside `rest`.
#ifndef MAILLENS_CORE_MESSAGE_PARSER_H_
#define MAILLENS_CORE_MESSAGE_PARSER_H_

#include <string_view>

#include "core/event.h"

namespace maillens::core {

void ParseMessage(Event* ev);

// smtpd family (core/parse_smtpd.cc): smtpd under any service name (submission, smtps,
// 10025, ...), postscreen, dnsblog, anvil, tlsproxy, scache, verify.
bool ParseSmtpd(std::string_view rest, Event* ev);
bool ParsePostscreen(std::string_view rest, Event* ev);
bool ParseDnsblog(std::string_view rest, Event* ev);
bool ParseAnvil(std::string_view rest, Event* ev);
bool ParseTlsproxy(std::string_view rest, Event* ev);
bool ParseScache(std::string_view rest, Event* ev);
bool ParseVerify(std::string_view rest, Event* ev);

// "Anonymous|Trusted|Untrusted|Verified TLS connection established from|to host[ip]:port:
// PROTOCOL with cipher CIPHER (...)": client fields for "from" (smtpd, tlsproxy), relay fields
// for "to" (the smtp client); kTlsProtocol, kTlsCipher, kDetail = the trust level. Shared so
// ParseDelivery can call it.
bool ParseTlsEstablished(std::string_view rest, Event* ev);

// queue family (core/parse_queue.cc): cleanup, pickup, qmgr, delivery agents (smtp, lmtp,
// local, virtual, pipe, error, discard, retry), bounce/defer/trace, postsuper, master.
bool ParseCleanup(std::string_view rest, Event* ev);
bool ParsePickup(std::string_view rest, Event* ev);
bool ParseQmgr(std::string_view rest, Event* ev);
bool ParseDelivery(std::string_view rest, Event* ev);
bool ParseBounce(std::string_view rest, Event* ev);
bool ParsePostsuper(std::string_view rest, Event* ev);
bool ParseMaster(std::string_view rest, Event* ev);

// other programs on a mail host (core/parse_other.cc).
bool ParseDovecot(std::string_view rest, Event* ev);
// A line of Dovecot's own log file (core/syslog_header.h, IsDovecotLogPathLine), which has
// no host field and no program "dovecot": parsed as the same line through syslog would be.
// False, leaving `ev` as it was, for any other line.
bool ParseDovecotLogPath(Event* ev);
bool ParseAmavis(std::string_view rest, Event* ev);

}  // namespace maillens::core

#endif  // MAILLENS_CORE_MESSAGE_PARSER_H_
