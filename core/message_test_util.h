// Test helper for the message parsers: an Event as the header parser would make it.
#ifndef MAILLENS_CORE_MESSAGE_TEST_UTIL_H_
#define MAILLENS_CORE_MESSAGE_TEST_UTIL_H_

#include <string_view>

#include "core/event.h"
#include "core/message_parser.h"

namespace maillens::core {

// Fills program/daemon/message as ParseSyslogHeader would and parses the message. `program`
// and `message` must outlive the event (string literals in tests).
inline Event ParseForTest(std::string_view program, std::string_view message) {
  Event ev;
  ev.program = program;
  size_t slash = program.rfind('/');
  ev.daemon = slash == std::string_view::npos ? program : program.substr(slash + 1);
  ev.message = message;
  ParseMessage(&ev);
  return ev;
}

}  // namespace maillens::core

#endif  // MAILLENS_CORE_MESSAGE_TEST_UTIL_H_
