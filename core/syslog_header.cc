#include "core/syslog_header.h"

#include <cstdint>
#include <cstring>
#include <string_view>

#include "absl/base/attributes.h"
#include "absl/base/config.h"
#include "absl/numeric/bits.h"
#include "core/scan.h"

namespace maillens::core {
namespace {

// The parser walks raw pointers bounded by `end`: every read is preceded by a bounds check, so
// no byte outside the caller's view is touched whatever the line holds (NULs, invalid UTF-8,
// a stamp cut in the middle). It allocates nothing and calls nothing that could, because it
// runs once per line at millions of lines per second; for the same reason the hot loops look
// at eight bytes at a time when eight bytes are left (see "Eight bytes at a time" below).

constexpr int64_t kMicrosPerSecond = 1000000;
constexpr int64_t kSecondsPerDay = 86400;

// ---- Eight bytes at a time ----------------------------------------------------------------
//
// A word holds the next eight bytes of the line, the first byte in the lowest bits. The mask
// functions set the high bit of every byte of the word that has a property, exactly per byte
// (no carry crosses from one byte into the next), so the lowest set bit finds the first such
// byte and the highest set bit the last. FirstBytesEqual alone trades exactness above the
// first match for speed, and is only used where the first match is all that counts.

constexpr uint64_t kOnes = 0x0101010101010101ULL;
constexpr uint64_t kHighBits = 0x8080808080808080ULL;
constexpr uint64_t kLow7Bits = 0x7F7F7F7F7F7F7F7FULL;

constexpr uint64_t Repeat(unsigned char c) { return kOnes * c; }
constexpr uint64_t HighBitOfByte(int i) { return uint64_t{0x80} << (8 * i); }

// Caller guarantees eight readable bytes at p.
inline uint64_t Load8(const char* p) {
  uint64_t w;
  std::memcpy(&w, p, sizeof(w));
#ifdef ABSL_IS_BIG_ENDIAN
  w = __builtin_bswap64(w);
#endif
  return w;
}

inline int FirstMarkedByte(uint64_t mask) { return absl::countr_zero(mask) >> 3; }
inline int LastMarkedByte(uint64_t mask) { return (63 - absl::countl_zero(mask)) >> 3; }

// Bytes equal to zero.
inline uint64_t ZeroBytes(uint64_t w) { return ~(((w & kLow7Bits) + kLow7Bits) | w | kLow7Bits); }

inline uint64_t BytesEqual(uint64_t w, char c) {
  return ZeroBytes(w ^ Repeat(static_cast<unsigned char>(c)));
}

// Cheaper than BytesEqual when only the first match matters: marks the first byte equal to c
// exactly, but a borrow may also mark bytes after it.
inline uint64_t FirstBytesEqual(uint64_t w, char c) {
  const uint64_t x = w ^ Repeat(static_cast<unsigned char>(c));
  return (x - kOnes) & ~x & kHighBits;
}

// Bytes that are not an ASCII digit.
inline uint64_t NonDigitBytes(uint64_t w) {
  const uint64_t low7 = w & kLow7Bits;
  const uint64_t at_least_0 = low7 + Repeat(0x80 - '0');
  const uint64_t above_9 = low7 + Repeat(0x80 - '9' - 1);
  return (w | ~at_least_0 | above_9) & kHighBits;
}

// Bytes outside printable ASCII '!'..'~' (blank, control, DEL, and every byte above 0x7f).
inline uint64_t NonGraphicBytes(uint64_t w) {
  const uint64_t low7 = w & kLow7Bits;
  const uint64_t at_least_bang = low7 + Repeat(0x80 - '!');
  const uint64_t del = low7 + Repeat(0x80 - 0x7f);
  return (w | ~at_least_bang | del) & kHighBits;
}

// Number of ASCII digits at the start of the word (0..8).
inline int LeadingDigits(uint64_t w) {
  const uint64_t non_digits = NonDigitBytes(w);
  return non_digits == 0 ? 8 : FirstMarkedByte(non_digits);
}

// Value of the first n (1..8) bytes of w, which the caller has checked are digits. The digits
// are moved to the top of the word and '0's put below them, then all eight are combined in
// three multiplications (the simdjson "eight digits" method).
inline uint32_t DigitsValue(uint64_t w, int n) {
  if (n < 8) w = (w << (8 * (8 - n))) | (Repeat('0') >> (8 * n));
  w = ((w & 0x0F0F0F0F0F0F0F0FULL) * 2561) >> 8;
  w = ((w & 0x00FF00FF00FF00FFULL) * 6553601) >> 16;
  return static_cast<uint32_t>(((w & 0x0000FFFF0000FFFFULL) * 42949672960001ULL) >> 32);
}

// ---- Numbers and dates -----------------------------------------------------------------------

// Value of an ASCII digit, or a number above 9 for any other byte (unsigned wrap-around).
inline unsigned DigitValue(char c) { return static_cast<unsigned char>(c) - unsigned{'0'}; }

// Two ASCII digits at p (caller guarantees two readable bytes); -1 when either is not a digit.
inline int TwoDigits(const char* p) {
  const unsigned a = DigitValue(p[0]), b = DigitValue(p[1]);
  return ((a > 9) | (b > 9)) ? -1 : static_cast<int>(a * 10 + b);
}

// Reads a run of digits at *p and advances past it. At most `max_value_digits` are part of
// the value; further digits are skipped (a fraction's digits beyond microseconds) and counted
// in *skipped. Returns the number of digits that make the value.
inline int ReadDigits(const char** p, const char* end, int max_value_digits, int64_t* value,
                      int* skipped) {
  const char* s = *p;
  int64_t v = 0;
  int used = 0;
  if (end - s >= 8) {
    const uint64_t w = Load8(s);
    const int n = LeadingDigits(w);
    used = n < max_value_digits ? n : max_value_digits;
    if (used > 0) v = DigitsValue(w, used);
    s += used;
  }
  if (used == 8 || end - *p < 8) {  // a long run, or too near the end for a word: byte by byte
    while (s < end && IsDigit(*s) && used < max_value_digits) {
      v = v * 10 + (*s++ - '0');
      ++used;
    }
  }
  const char* const value_end = s;
  while (s < end && IsDigit(*s)) ++s;
  *skipped = static_cast<int>(s - value_end);
  *value = v;
  *p = s;
  return used;
}

// English month abbreviation, exact case as syslog writes it; 0 when not a month.
int MonthFromName(const char* p) {
  const char a = p[0], b = p[1], c = p[2];
  switch (a) {
    case 'J':
      if (b == 'a' && c == 'n') return 1;
      if (b == 'u' && c == 'n') return 6;
      if (b == 'u' && c == 'l') return 7;
      return 0;
    case 'F':
      return b == 'e' && c == 'b' ? 2 : 0;
    case 'M':
      if (b == 'a' && c == 'r') return 3;
      if (b == 'a' && c == 'y') return 5;
      return 0;
    case 'A':
      if (b == 'p' && c == 'r') return 4;
      if (b == 'u' && c == 'g') return 8;
      return 0;
    case 'S':
      return b == 'e' && c == 'p' ? 9 : 0;
    case 'O':
      return b == 'c' && c == 't' ? 10 : 0;
    case 'N':
      return b == 'o' && c == 'v' ? 11 : 0;
    case 'D':
      return b == 'e' && c == 'c' ? 12 : 0;
    default:
      return 0;
  }
}

bool IsLeapYear(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int DaysInMonth(int64_t year, int month) {
  static constexpr int kDays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return month == 2 && IsLeapYear(year) ? 29 : kDays[month - 1];
}

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil), for the
// years a stamp can hold (0..9999). Written out rather than calling absl because RFC 3339
// stamps carry their offset: no zone lookup is needed, only arithmetic. The year is moved up by
// one 400-year era so that everything stays unsigned, which makes the divisions cheap.
inline int64_t DaysFromCivil(int64_t year, int month, int day) {
  const uint32_t y = static_cast<uint32_t>(year + 400) - (month <= 2 ? 1 : 0);
  const uint32_t era = y / 400;
  const uint32_t yoe = y - era * 400;                                            // [0, 399]
  const uint32_t mp = static_cast<uint32_t>(month > 2 ? month - 3 : month + 9);  // March = 0
  const uint32_t doy = (153 * mp + 2) / 5 + static_cast<uint32_t>(day) - 1;      // [0, 365]
  const uint32_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;                    // [0, 146096]
  return (static_cast<int64_t>(era) - 1) * 146097 + doe - 719468;
}

// ---- Stamps ----------------------------------------------------------------------------------

// The fixed-width parts of a stamp as an eight-byte pattern: 'd' is any ASCII digit, '?' any
// byte (checked by the caller), every other character must be there as written.
struct WordPattern {
  uint64_t digits = 0;         // high bit of each digit byte
  uint64_t literal_mask = 0;   // 0xff for each literal byte
  uint64_t literal_bytes = 0;  // the literals themselves
};

constexpr WordPattern Pattern(const char (&text)[9]) {
  WordPattern pattern;
  for (int i = 0; i < 8; ++i) {
    if (text[i] == 'd') {
      pattern.digits |= HighBitOfByte(i);
    } else if (text[i] != '?') {
      pattern.literal_mask |= uint64_t{0xFF} << (8 * i);
      pattern.literal_bytes |= uint64_t{static_cast<unsigned char>(text[i])} << (8 * i);
    }
  }
  return pattern;
}

inline bool Matches(uint64_t w, const WordPattern& pattern) {
  return (NonDigitBytes(w) & pattern.digits) == 0 &&
         (w & pattern.literal_mask) == pattern.literal_bytes;
}

// For a word that matched a pattern: byte i of the result is the two-digit number at bytes i
// and i+1 (meaningful where both are digits). Every byte stays below 256, so nothing carries.
inline uint64_t PairValues(uint64_t w) {
  const uint64_t d = w & 0x0F0F0F0F0F0F0F0FULL;
  return d * 10 + (d >> 8);
}

inline int ByteAt(uint64_t w, int i) { return static_cast<int>((w >> (8 * i)) & 0xFF); }

// Reads "hh:mm:ss" into out and advances *p past it.
bool ReadClock(const char** p, const char* end, SyslogHeader* out) {
  const char* s = *p;
  if (end - s < 8) return false;
  const uint64_t w = Load8(s);
  if (!Matches(w, Pattern("dd:dd:dd"))) return false;
  const uint64_t pairs = PairValues(w);
  out->hour = ByteAt(pairs, 0);
  out->minute = ByteAt(pairs, 3);
  out->second = ByteAt(pairs, 6);
  *p = s + 8;
  return true;
}

// Reads an optional ".fraction" after the seconds: any number of digits, microseconds kept and
// the rest truncated. Sets out->micros (0 without a fraction).
bool ReadFraction(const char** p, const char* end, SyslogHeader* out) {
  out->micros = 0;
  const char* s = *p;
  if (s >= end || *s != '.') return true;
  ++s;
  int64_t value;
  int skipped;
  const int used = ReadDigits(&s, end, 6, &value, &skipped);
  if (used == 0) return false;
  static constexpr int kScale[7] = {0, 100000, 10000, 1000, 100, 10, 1};
  out->micros = static_cast<int>(value) * kScale[used];
  *p = s;
  return true;
}

// 60 is a leap second; syslog daemons pass it through.
inline bool ClockInRange(const SyslogHeader& h) {
  return h.hour <= 23 && h.minute <= 59 && h.second <= 60;
}

// "Mmm dd hh:mm:ss[.frac]" with the day space-padded ("Nov  2"), bare ("Nov 2") or
// zero-padded ("Nov 02", Postfix's own maillog_file).
bool ReadClassicStamp(const char** p, const char* end, SyslogHeader* out) {
  const char* s = *p;
  if (end - s < 4 || s[3] != ' ') return false;
  const int month = MonthFromName(s);
  if (month == 0) return false;
  s += 4;
  if (s < end && *s == ' ') ++s;  // space padding of a one-digit day
  if (s >= end || !IsDigit(*s)) return false;
  int day = *s++ - '0';
  if (s < end && IsDigit(*s)) day = day * 10 + (*s++ - '0');
  if (day < 1 || day > 31 || s >= end || *s != ' ') return false;
  ++s;
  if (!ReadClock(&s, end, out) || !ClockInRange(*out) || !ReadFraction(&s, end, out)) {
    return false;
  }
  out->ts_form = TimestampForm::kClassic;
  out->month = month;
  out->day = day;
  *p = s;
  return true;
}

// The general form of "YYYY-MM-DD?hh:mm:ss" for ReadIsoStamp: a year of two to four digits and
// 'T', 't' or ' ' between date and time. Sets year, out->month, out->day and the clock.
bool ReadIsoDateTime(const char** p, const char* end, int64_t* year, SyslogHeader* out) {
  const char* s = *p;
  int64_t y = 0;
  const char* digits = s;
  while (s < end && IsDigit(*s) && s - digits < 5) y = y * 10 + (*s++ - '0');
  const int64_t year_digits = s - digits;
  if (year_digits < 2 || year_digits > 4) return false;
  if (year_digits < 4) y = 2000 + y % 100;
  // "-MM-DDThh:mm:ss" is 15 bytes.
  if (end - s < 15 || s[0] != '-' || s[3] != '-') return false;
  out->month = TwoDigits(s + 1);
  out->day = TwoDigits(s + 4);
  const char sep = s[6];
  if (sep != 'T' && sep != 't' && sep != ' ') return false;
  s += 7;
  if (!ReadClock(&s, end, out)) return false;
  *year = y;
  *p = s;
  return true;
}

// The RFC 3339 form nearly every such log has, rsyslog's RSYSLOG_FileFormat:
// "YYYY-MM-DDThh:mm:ss.ffffff+hh:mm", read as four words with no loop and few branches since
// it is most of the header's cost. Caller guarantees 32 readable bytes. Returns false, leaving
// the general path to decide, when the stamp is not exactly this form or out of range.
bool ReadRsyslogStamp(const char* s, SyslogHeader* out) {
  const uint64_t w0 = Load8(s), w1 = Load8(s + 8), w2 = Load8(s + 16), w3 = Load8(s + 24);
  const char sign = s[26];
  if (!Matches(w0, Pattern("dddd-dd-")) || !Matches(w1, Pattern("ddTdd:dd")) ||
      !Matches(w2, Pattern(":dd.dddd")) || !Matches(w3, Pattern("dd?dd:dd")) ||
      (sign != '+' && sign != '-')) {
    return false;
  }
  const uint64_t p0 = PairValues(w0), p1 = PairValues(w1), p2 = PairValues(w2), p3 = PairValues(w3);
  const int64_t year = ByteAt(p0, 0) * 100 + ByteAt(p0, 2);
  const int month = ByteAt(p0, 5), day = ByteAt(p1, 0);
  out->hour = ByteAt(p1, 3);
  out->minute = ByteAt(p1, 6);
  out->second = ByteAt(p2, 1);
  out->micros = ByteAt(p2, 4) * 10000 + ByteAt(p2, 6) * 100 + ByteAt(p3, 0);
  const int offset_hours = ByteAt(p3, 3), offset_minutes = ByteAt(p3, 6);
  if (month < 1 || month > 12 || day < 1 || (day > 28 && day > DaysInMonth(year, month)) ||
      !ClockInRange(*out) || offset_hours > 23 || offset_minutes > 59) {
    return false;
  }
  const int64_t offset_seconds =
      (sign == '-' ? -1 : 1) * (offset_hours * 3600 + offset_minutes * 60);
  const int64_t seconds = DaysFromCivil(year, month, day) * kSecondsPerDay + out->hour * 3600 +
                          out->minute * 60 + out->second - offset_seconds;
  out->ts_form = TimestampForm::kRfc3339;
  out->utc_us = seconds * kMicrosPerSecond + out->micros;
  out->month = month;
  out->day = day;
  return true;
}

// "YYYY-MM-DDThh:mm:ss[.frac](Z|+hh:mm|-hh:mm|+hhmm)". The year may be cut to two or three
// digits by a broken writer ("021-02-06T..."); such a year is read as 20yy from its last two
// digits, since no mail log predates 2000 and anything else would put the line centuries away.
//
// Two zone-less variants are also read, as local time (kClassic, so TimeContext applies the
// configured zone): RFC 3339 without its offset, and Dovecot's own log_path stamp
// "YYYY-MM-DD hh:mm:ss". SyslogHeader has no year for kClassic, so their year is dropped and
// inferred like a classic stamp's.
bool ReadIsoStamp(const char** p, const char* end, SyslogHeader* out) {
  const char* s = *p;
  if (end - s >= 32 && ReadRsyslogStamp(s, out)) {
    *p = s + 32;
    return true;
  }
  int64_t year;
  if (!ReadIsoDateTime(&s, end, &year, out)) return false;
  const int month = out->month, day = out->day;
  if (month < 1 || month > 12 || day < 1 || (day > 28 && day > DaysInMonth(year, month)) ||
      !ClockInRange(*out) || !ReadFraction(&s, end, out)) {
    return false;
  }

  int64_t offset_seconds = 0;
  bool has_offset = true;
  if (s < end && (*s == 'Z' || *s == 'z')) {
    ++s;
  } else if (s < end && (*s == '+' || *s == '-')) {
    const int sign = *s == '-' ? -1 : 1;
    ++s;
    if (end - s < 4) return false;
    const bool colon = s[2] == ':';
    if (colon && end - s < 5) return false;
    const int oh = TwoDigits(s), om = TwoDigits(colon ? s + 3 : s + 2);
    if (oh < 0 || oh > 23 || om < 0 || om > 59) return false;
    s += colon ? 5 : 4;
    offset_seconds = sign * (oh * 3600 + om * 60);
  } else {
    has_offset = false;
  }

  if (has_offset) {
    const int64_t seconds = DaysFromCivil(year, month, day) * kSecondsPerDay + out->hour * 3600 +
                            out->minute * 60 + out->second - offset_seconds;
    out->ts_form = TimestampForm::kRfc3339;
    out->utc_us = seconds * kMicrosPerSecond + out->micros;
  } else {
    out->ts_form = TimestampForm::kClassic;
  }
  *p = s;
  return true;
}

// ---- Host and program ------------------------------------------------------------------------
//
// A program name is printable ASCII except the delimiters of "prog[pid]: "; a host is printable
// ASCII without brackets (which would mean a program with a bad pid). Control and high bytes
// belong to neither, so no garbage becomes a program name.

inline bool IsProgramChar(char c) {
  return c > ' ' && c < 0x7f && c != ':' && c != '[' && c != ']';
}
inline bool IsHostChar(char c) { return c > ' ' && c < 0x7f && c != '[' && c != ']'; }

// Returns the first byte at or after s that cannot be part of a program name (or end).
ABSL_ATTRIBUTE_ALWAYS_INLINE inline const char* SkipProgramChars(const char* s, const char* end) {
  while (end - s >= 8) {
    const uint64_t w = Load8(s);
    const uint64_t stops = NonGraphicBytes(w) | FirstBytesEqual(w, ':') | FirstBytesEqual(w, '[') |
                           FirstBytesEqual(w, ']');
    if (stops != 0) return s + FirstMarkedByte(stops);
    s += 8;
  }
  while (s < end && IsProgramChar(*s)) ++s;
  return s;
}

// Same for a host name, which may also hold ':' (an IPv6 address).
ABSL_ATTRIBUTE_ALWAYS_INLINE inline const char* SkipHostChars(const char* s, const char* end) {
  while (end - s >= 8) {
    const uint64_t w = Load8(s);
    const uint64_t stops = NonGraphicBytes(w) | FirstBytesEqual(w, '[') | FirstBytesEqual(w, ']');
    if (stops != 0) return s + FirstMarkedByte(stops);
    s += 8;
  }
  while (s < end && IsHostChar(*s)) ++s;
  return s;
}

// The daemon is the part of the program after its last '/', searched from the end since
// daemon names are short.
const char* DaemonStart(const char* start, const char* program_end) {
  const char* p = program_end;
  while (p - start >= 8) {
    const uint64_t slashes = BytesEqual(Load8(p - 8), '/');
    if (slashes != 0) return p - 8 + LastMarkedByte(slashes) + 1;
    p -= 8;
  }
  while (p > start && p[-1] != '/') --p;
  return p;
}

// Finishes "program[pid]: ", "program: " or (a writer that dropped the colon) "program[pid] "
// where [start, s) holds program characters and s is the byte after them. On success fills
// program, daemon, pid and message. A terminating ':' may also end the line (empty message); a
// bare "program[pid]" at the end of the line is rejected.
bool FinishProgram(const char* start, const char* s, const char* end, SyslogHeader* out) {
  if (s == start || s >= end) return false;
  const char* const program_end = s;

  int64_t pid = -1;
  if (*s == '[') {
    ++s;
    int skipped;
    // 18 digits cannot overflow int64_t; a longer "pid" is not one.
    if (ReadDigits(&s, end, 18, &pid, &skipped) == 0 || skipped != 0) return false;
    if (s >= end || *s != ']') return false;
    ++s;
    if (s >= end) return false;
    if (*s == ':') {
      ++s;
      if (s < end && *s++ != ' ') return false;
    } else if (*s == ' ') {
      ++s;
    } else {
      return false;
    }
  } else if (*s == ':') {
    ++s;
    if (s < end && *s++ != ' ') return false;
  } else {
    return false;
  }

  const char* const daemon = DaemonStart(start, program_end);
  if (daemon == program_end) return false;  // "postfix/": no daemon, not a program
  out->program = std::string_view(start, program_end - start);
  out->daemon = std::string_view(daemon, program_end - daemon);
  out->pid = pid;
  out->message = std::string_view(s, end - s);
  return true;
}

// Whether [start, s) ends inside a "<...>" (an '<' with no '>' after it).
bool InsideAngles(const char* start, const char* s) {
  for (const char* p = s; p > start; --p) {
    if (p[-1] == '>') return false;
    if (p[-1] == '<') return true;
  }
  return false;
}

// Leading junk seen in real files: NUL runs (a file preallocated or truncated under a writer),
// stray blanks, a UTF-8 byte-order mark, and a syslog priority "<NN>" from writers that forward
// the raw datagram.
void SkipLeadingJunk(const char** p, const char* end) {
  const char* s = *p;
  while (s < end && (*s == '\0' || *s == ' ' || *s == '\t' || *s == '\r')) ++s;
  if (end - s >= 3 && static_cast<unsigned char>(s[0]) == 0xEF &&
      static_cast<unsigned char>(s[1]) == 0xBB && static_cast<unsigned char>(s[2]) == 0xBF) {
    s += 3;
  }
  if (s < end && *s == '<') {
    const char* q = s + 1;
    while (q < end && IsDigit(*q) && q - s <= 3) ++q;
    if (q > s + 1 && q < end && *q == '>') s = q + 1;
  }
  *p = s;
}

}  // namespace

bool ParseSyslogHeader(std::string_view line, SyslogHeader* out) {
  const char* s = line.data();
  const char* const end = s + line.size();

  // Lines start with the stamp; anything else goes the slow way.
  if (s < end && !IsDigit(*s) && (*s < 'A' || *s > 'Z')) SkipLeadingJunk(&s, end);
  if (s >= end) return false;

  const bool stamp_ok = IsDigit(*s) ? ReadIsoStamp(&s, end, out) : ReadClassicStamp(&s, end, out);
  if (!stamp_ok) return false;
  if (s >= end || *s != ' ') return false;
  while (s < end && *s == ' ') ++s;
  if (s >= end) return false;

  // The host field is optional (Dovecot's own log, some relays): the first token is the
  // program when it is terminated like one ("prog[pid]:", "prog:", "prog[pid] "). A host never
  // is: it has no brackets, and a ':' in it (an IPv6 address) is not followed by a blank. The
  // token is scanned once; program characters are host characters too.
  out->host = std::string_view();
  const char* const token = s;
  s = SkipProgramChars(s, end);
  if (s < end && (*s == '[' || *s == ':')) {
    if (FinishProgram(token, s, end, out)) return true;
    if (*s == ':' && InsideAngles(token, s)) {
      // Dovecot's own log names a recipient's session "<ID:R2>": the ':' is inside its
      // decoration, and the program goes on to the ": " after it.
      const char* close = static_cast<const char*>(std::memchr(s, '>', end - s));
      if (close != nullptr) {
        const char* after = SkipProgramChars(close + 1, end);
        if (after < end && *after == ':' && FinishProgram(token, after, end, out)) return true;
      }
    }
    s = SkipHostChars(s, end);
  }
  if (s == token || s >= end || *s != ' ') return false;
  out->host = std::string_view(token, s - token);
  while (s < end && *s == ' ') ++s;
  const char* const program = s;
  s = SkipProgramChars(s, end);
  return FinishProgram(program, s, end, out);
}

std::string_view DovecotProcess(std::string_view program) {
  size_t n = 0;
  while (n < program.size() && program[n] != '(' && program[n] != '<') ++n;
  return program.substr(0, n);
}

bool IsDovecotLogPathLine(std::string_view host, std::string_view program,
                          std::string_view message) {
  if (!host.empty()) return false;
  bool level = false;
  for (std::string_view word :
       {"Info: ", "Warning: ", "Error: ", "Fatal: ", "Panic: ", "Debug: "}) {
    if (message.substr(0, word.size()) == word) level = true;
  }
  if (!level) return false;
  // Dovecot's processes (its services and their workers). A name outside the list stays an
  // ordinary hostless line: no other program's lines are read as Dovecot's by accident.
  static constexpr std::string_view kProcesses[] = {
      "lmtp",           "lda",          "deliver",        "imap",
      "pop3",           "submission",   "managesieve",    "auth",
      "auth-worker",    "master",       "config",         "dict",
      "dict-async",     "indexer",      "indexer-worker", "doveadm",
      "anvil",          "log",          "stats",          "replicator",
      "aggregator",     "quota-status", "imap-urlauth",   "imap-urlauth-worker",
      "imap-hibernate", "director",     "dns-client",     "lmtp-proxy",
      "old-stats",      "health-check"};
  std::string_view process = DovecotProcess(program);
  if (process.size() > 6 && process.substr(process.size() - 6) == "-login") return true;
  for (std::string_view known : kProcesses) {
    if (process == known) return true;
  }
  return false;
}

}  // namespace maillens::core
