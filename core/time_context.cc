// STUB: to be written.
#include "core/time_context.h"

namespace maillens::core {
TimeContext::TimeContext(TimeOptions options) : options_(options) {}
int64_t TimeContext::ResolveClassic(int, int, int, int, int, int) { return 0; }
}  // namespace maillens::core
