// Finds the next hop's queue ID in a delivery reply ("250 2.0.0 Ok: queued as 3F2A1C"), so a
// message can be followed to the server it was handed to. Thread-safe: a pure function.
#ifndef MAILLENS_CORE_NEXT_HOP_H_
#define MAILLENS_CORE_NEXT_HOP_H_

#include <string_view>

#include "core/event.h"

namespace maillens::core {

// Looks at `reply` (the text inside "status=sent (...)", or a proxy reply) and, when it names
// the queue ID the receiving MTA gave the message, sets `*queue_id` to it and returns the
// form. Returns NextHopForm::kNone otherwise.
NextHopForm ExtractNextHop(std::string_view reply, std::string_view* queue_id);

}  // namespace maillens::core

#endif  // MAILLENS_CORE_NEXT_HOP_H_
