// STUB: to be written (queue family). See core/message_parser.h.
#include "core/message_parser.h"

namespace maillens::core {
bool ParseCleanup(std::string_view, Event*) { return false; }
bool ParsePickup(std::string_view, Event*) { return false; }
bool ParseQmgr(std::string_view, Event*) { return false; }
bool ParseDelivery(std::string_view, Event*) { return false; }
bool ParseBounce(std::string_view, Event*) { return false; }
bool ParsePostsuper(std::string_view, Event*) { return false; }
bool ParseMaster(std::string_view, Event*) { return false; }
}  // namespace maillens::core
