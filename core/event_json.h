// One Event as one JSON object, the form `maillens parse` prints. Thread-safe: pure function.
#ifndef MAILLENS_CORE_EVENT_JSON_H_
#define MAILLENS_CORE_EVENT_JSON_H_

#include <string>

#include "core/event.h"

namespace maillens::core {

// Appends {"ts":..., "host":..., "program":..., "pid":..., "queue_id":..., "kind":..., then
// every present field under its Postfix name, "queued_as" and "queued_as_form"}. With
// `include_raw`, adds "raw" (the line; invalid UTF-8 shown as U+FFFD, and "raw_exact": false).
void AppendEventJson(const Event& ev, std::string_view raw, bool include_raw, std::string* out);

}  // namespace maillens::core

#endif  // MAILLENS_CORE_EVENT_JSON_H_
