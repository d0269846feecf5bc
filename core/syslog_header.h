// The syslog part of a maillog line: timestamp, host, program, pid. No I/O.
//
// Forms read (see syslog_header_test.cc for each):
//   "Nov  2 10:11:12 host postfix/smtpd[123]: text"     classic, day space-padded
//   "Nov 02 10:11:12 host postfix/smtpd[123]: text"     classic, day zero-padded (maillog_file)
//   "2023-03-16T23:05:28.376793+01:00 host prog[1]: t"  RFC 3339 with fraction and offset
//   "... host prog: text" (no pid), "... prog[1]: text" (no host), "... prog[1] text" (no ':')
//   "Dec 07 16:03:04 lmtp(u)<1><ID:R2>: Info: text" (Dovecot's log_path: no host, the program
//   "lmtp(u)<1><ID:R2>" with a ':' inside its "<...>"; IsDovecotLogPathLine tells it apart)
//   leading NUL bytes; a year truncated to three digits ("021-02-06T...")
// Thread-safe: a pure function.
#ifndef MAILLENS_CORE_SYSLOG_HEADER_H_
#define MAILLENS_CORE_SYSLOG_HEADER_H_

#include <cstdint>
#include <string_view>

#include "core/event.h"

namespace maillens::core {

struct SyslogHeader {
  TimestampForm ts_form = TimestampForm::kNone;
  // kClassic: civil fields without year or zone (resolved by TimeContext).
  int month = 0;  // 1..12
  int day = 0;
  int hour = 0;
  int minute = 0;
  int second = 0;
  int micros = 0;  // classic stamps may carry a fraction in some syslog configurations
  // kRfc3339: already UTC.
  int64_t utc_us = 0;

  std::string_view host;     // "" when the line has no host field
  std::string_view program;  // "postfix/submission/smtpd"
  std::string_view daemon;   // "smtpd": the program's last '/' component
  int64_t pid = -1;
  std::string_view message;  // everything after "program[pid]: "
};

// Reads the header of `line`. Returns false when no timestamp and program can be found; `out`
// may then hold partial results and the caller treats the line as malformed.
bool ParseSyslogHeader(std::string_view line, SyslogHeader* out);

// Whether a line with this header is one of Dovecot's own log file (log_path, info_log_path)
// rather than a syslog line: no host field, a Dovecot process as the program with the
// decorations Dovecot gives it ("lmtp(user)<pid><session>", "auth-worker(12)", "imap-login",
// "master"), and the level Dovecot writes first in such a file ("Info: ", "Error: ", ...).
// Through syslog the same lines come under the program "dovecot" and without the level.
bool IsDovecotLogPathLine(std::string_view host, std::string_view program,
                          std::string_view message);

// The Dovecot process a log_path line's program names: "lmtp" of "lmtp(user)<1><session>".
std::string_view DovecotProcess(std::string_view program);

}  // namespace maillens::core

#endif  // MAILLENS_CORE_SYSLOG_HEADER_H_
