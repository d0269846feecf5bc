// STUB: to be written (dovecot, amavis). See core/message_parser.h.
#include "core/message_parser.h"

namespace maillens::core {
bool ParseDovecot(std::string_view, Event*) { return false; }
bool ParseAmavis(std::string_view, Event*) { return false; }
}  // namespace maillens::core
