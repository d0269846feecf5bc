#include "core/parser.h"

#include "core/message_parser.h"
#include "core/syslog_header.h"

namespace maillens::core {

Event ParseLine(std::string_view line, TimeContext* time) {
  Event ev;
  SyslogHeader header;
  if (!ParseSyslogHeader(line, &header)) {
    ev.kind = Kind::kMalformed;
    ev.message = line;
    return ev;
  }
  ev.ts_form = header.ts_form;
  if (header.ts_form == TimestampForm::kClassic) {
    ev.time_us = time->ResolveClassic(header.month, header.day, header.hour, header.minute,
                                      header.second, header.micros);
  } else if (header.ts_form == TimestampForm::kRfc3339) {
    ev.time_us = header.utc_us;
  }
  ev.host = header.host;
  ev.program = header.program;
  ev.daemon = header.daemon;
  ev.pid = header.pid;
  ev.message = header.message;
  ParseMessage(&ev);
  return ev;
}

}  // namespace maillens::core
