// libFuzzer target: any bytes, split into lines, must parse and print without a crash, a
// sanitizer report, or a field view that points neither into its line nor at a constant.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/event_json.h"
#include "core/parser.h"

namespace {

bool Inside(std::string_view part, std::string_view whole) {
  if (part.data() == nullptr) return true;
  return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
}

// A field is a view into its line or one of the parser's constant words (a string literal:
// short, printable, NUL-terminated). Anything else is a dangling or stray view.
bool InsideOrConstant(std::string_view part, std::string_view whole) {
  if (Inside(part, whole)) return true;
  if (part.size() > 40 || part.data()[part.size()] != '\0') return false;
  for (char c : part) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  maillens::core::TimeOptions options;
  options.reference_us = 1700000000000000;
  maillens::core::TimeContext time(options);
  std::string out;
  while (!input.empty()) {
    size_t nl = input.find('\n');
    std::string_view line = input.substr(0, nl);
    input.remove_prefix(nl == std::string_view::npos ? input.size() : nl + 1);
    maillens::core::Event ev = maillens::core::ParseLine(line, &time);
    // The daemon of a line from Dovecot's own log file is the constant "dovecot" (as through
    // syslog), so it may be a constant too.
    bool ok = Inside(ev.host, line) && Inside(ev.program, line) &&
              InsideOrConstant(ev.daemon, line) && Inside(ev.message, line) &&
              Inside(ev.queue_id, line) && Inside(ev.queued_as, line);
    for (std::string_view f : ev.fields) ok = ok && InsideOrConstant(f, line);
    if (!ok) __builtin_trap();
    out.clear();
    maillens::core::AppendEventJson(ev, line, true, &out);
  }
  return 0;
}
