// STUB: to be written.
#include "core/next_hop.h"

namespace maillens::core {
NextHopForm ExtractNextHop(std::string_view, std::string_view*) { return NextHopForm::kNone; }
}  // namespace maillens::core
