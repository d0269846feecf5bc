// Text from log lines made safe to show to a person. Pure functions; no I/O.
#ifndef MAILLENS_CORE_ESCAPE_H_
#define MAILLENS_CORE_ESCAPE_H_

#include <string>
#include <string_view>

namespace maillens::core {

// `text` as a person may see it on a terminal or in a page: each byte of a control character
// shown as \xNN, so a log line cannot move the cursor, clear the screen, set the window title
// or recolour a terminal. Escaped: C0 controls except tab, DEL, C1 controls both as a stray
// byte 0x80..0x9f and UTF-8 encoded (U+0080..U+009F, as \xc2\xNN), and every byte that is
// not part of well-formed UTF-8. Well-formed UTF-8 text (é, 日本) is kept as is. The result
// is well-formed UTF-8, and escaping it again changes nothing.
//
// The one rule of the command line: every piece of log-derived text printed for a person
// (tables, trace, report text, Markdown and HTML, hosts) goes through this, terminal or not;
// raw lines (search --lines, trace --raw, tail) keep their bytes when piped, like grep, and
// are escaped on a terminal; JSON and CSV keep the data exact.
std::string EscapeControls(std::string_view text);

}  // namespace maillens::core

#endif  // MAILLENS_CORE_ESCAPE_H_
