#include "core/message_parser.h"

#include <algorithm>

#include "core/queue_id.h"
#include "core/scan.h"

namespace maillens::core {
namespace {

using FamilyParser = bool (*)(std::string_view, Event*);

// Daemon name (last component of the program) to its family parser.
FamilyParser ParserFor(std::string_view program, std::string_view daemon) {
  if (StartsWith(program, "postfix")) {
    if (daemon == "smtpd") return ParseSmtpd;
    if (daemon == "smtp" || daemon == "lmtp" || daemon == "local" || daemon == "virtual" ||
        daemon == "pipe" || daemon == "error" || daemon == "discard" || daemon == "retry") {
      return ParseDelivery;
    }
    if (daemon == "qmgr" || daemon == "nqmgr") return ParseQmgr;
    if (daemon == "cleanup") return ParseCleanup;
    if (daemon == "postscreen") return ParsePostscreen;
    if (daemon == "pickup") return ParsePickup;
    if (daemon == "bounce" || daemon == "defer" || daemon == "trace") return ParseBounce;
    if (daemon == "anvil") return ParseAnvil;
    if (daemon == "dnsblog") return ParseDnsblog;
    if (daemon == "tlsproxy") return ParseTlsproxy;
    if (daemon == "postsuper") return ParsePostsuper;
    if (daemon == "master" || daemon == "postfix-script" || daemon == "postfix") {
      return ParseMaster;
    }
    if (daemon == "scache") return ParseScache;
    if (daemon == "verify") return ParseVerify;
    return nullptr;
  }
  if (StartsWith(program, "dovecot")) return ParseDovecot;
  if (StartsWith(program, "amavis")) return ParseAmavis;
  return nullptr;
}

// Strips "warning: " and friends. Postfix writes them right after the program.
void ConsumeSeverity(std::string_view* rest, Event* ev) {
  if (rest->empty()) return;
  switch ((*rest)[0]) {
    case 'w':
      if (Consume(rest, "warning: ")) ev->severity = Severity::kWarning;
      break;
    case 'e':
      if (Consume(rest, "error: ")) ev->severity = Severity::kError;
      break;
    case 'f':
      if (Consume(rest, "fatal: ")) ev->severity = Severity::kFatal;
      break;
    case 'p':
      if (Consume(rest, "panic: ")) ev->severity = Severity::kPanic;
      break;
    default:
      break;
  }
}

// Strips "QUEUEID: " (or "NOQUEUE: ").
void ConsumeQueueId(std::string_view* rest, Event* ev) {
  size_t colon = rest->find(':');
  if (colon == std::string_view::npos || colon < 5 || colon > 32) return;
  if (colon + 1 < rest->size() && (*rest)[colon + 1] != ' ') return;
  std::string_view candidate = rest->substr(0, colon);
  QueueIdForm form = ClassifyQueueId(candidate);
  if (form == QueueIdForm::kNone) return;
  ev->queue_id = candidate;
  ev->queue_id_form = form;
  rest->remove_prefix(std::min(rest->size(), colon + 2));
}

}  // namespace

void ParseMessage(Event* ev) {
  if (ev->host.empty() && ParseDovecotLogPath(ev)) return;
  std::string_view rest = ev->message;
  ConsumeSeverity(&rest, ev);
  ConsumeQueueId(&rest, ev);
  FamilyParser parser = ParserFor(ev->program, ev->daemon);
  if (parser != nullptr && parser(rest, ev)) return;
  ev->kind = ev->severity != Severity::kInfo ? Kind::kLogMessage : Kind::kUnparsed;
  if (ev->kind == Kind::kLogMessage) ev->Set(Field::kReason, rest);
}

}  // namespace maillens::core
