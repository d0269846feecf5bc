// Postfix queue IDs: the short hexadecimal form (reused once a message leaves the queue), the
// long form of enable_long_queue_ids (time-based, practically unique), and NOQUEUE.
// Thread-safe: pure functions.
#ifndef MAILLENS_CORE_QUEUE_ID_H_
#define MAILLENS_CORE_QUEUE_ID_H_

#include <string_view>

#include "core/event.h"

namespace maillens::core {

// kShort: 5 or more upper-case hex digits ("17CCA8044"). kLong: Postfix's long form
// ("3mPVKl0Mhjz7sXv": base-52 digits, a 'z', base-51 inode digits). kNoQueue: "NOQUEUE".
// kNone: anything else.
QueueIdForm ClassifyQueueId(std::string_view text);

}  // namespace maillens::core

#endif  // MAILLENS_CORE_QUEUE_ID_H_
