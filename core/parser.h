// The maillog parser: one line of bytes in, one typed Event out. No I/O.
//
// Every line yields an Event, whatever its bytes (invalid UTF-8, NULs, no header at all):
// what is not understood gets Kind::kUnparsed or Kind::kMalformed and keeps its raw text.
//
// Thread-compatible: a TimeContext carries the year inference for one sequential stream of
// lines (one file); use one per stream.
#ifndef MAILLENS_CORE_PARSER_H_
#define MAILLENS_CORE_PARSER_H_

#include <string_view>

#include "core/event.h"
#include "core/time_context.h"

namespace maillens::core {

// Parses `line` (without its trailing newline). The returned Event holds views into `line`.
// `time` resolves classic stamps (no year, no zone) and is updated as lines go by.
Event ParseLine(std::string_view line, TimeContext* time);

}  // namespace maillens::core

#endif  // MAILLENS_CORE_PARSER_H_
