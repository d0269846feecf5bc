// STUB: to be written (smtpd family). See core/message_parser.h.
#include "core/message_parser.h"

namespace maillens::core {
bool ParseSmtpd(std::string_view, Event*) { return false; }
bool ParsePostscreen(std::string_view, Event*) { return false; }
bool ParseDnsblog(std::string_view, Event*) { return false; }
bool ParseAnvil(std::string_view, Event*) { return false; }
bool ParseTlsproxy(std::string_view, Event*) { return false; }
bool ParseScache(std::string_view, Event*) { return false; }
bool ParseVerify(std::string_view, Event*) { return false; }
}  // namespace maillens::core
