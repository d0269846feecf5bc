// STUB: to be written.
#include "core/queue_id.h"

namespace maillens::core {
QueueIdForm ClassifyQueueId(std::string_view) { return QueueIdForm::kNone; }
}  // namespace maillens::core
