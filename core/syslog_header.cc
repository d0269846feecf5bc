// STUB: to be written.
#include "core/syslog_header.h"

namespace maillens::core {
bool ParseSyslogHeader(std::string_view, SyslogHeader*) { return false; }
}  // namespace maillens::core
