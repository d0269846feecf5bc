#include "core/syslog_header.h"

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace maillens::core {
namespace {

constexpr int64_t kMicros = 1000000;

SyslogHeader MustParse(std::string_view line) {
  SyslogHeader h;
  EXPECT_TRUE(ParseSyslogHeader(line, &h)) << line;
  return h;
}

bool Parses(std::string_view line) {
  SyslogHeader h;
  return ParseSyslogHeader(line, &h);
}

bool IsProgramByte(char c) { return c > ' ' && c < 0x7f && c != ':' && c != '[' && c != ']'; }

// What every accepted header must satisfy, whatever the input: program and host hold only
// the bytes they may hold, the daemon is the program's last '/' component, and the message is
// the rest of the line.
::testing::AssertionResult HeaderIsClean(std::string_view line, const SyslogHeader& h) {
  if (h.program.empty()) return ::testing::AssertionFailure() << "empty program";
  for (char c : h.program) {
    if (!IsProgramByte(c)) return ::testing::AssertionFailure() << "program byte " << int{c};
  }
  for (char c : h.host) {
    if (c <= ' ' || c >= 0x7f || c == '[' || c == ']') {
      return ::testing::AssertionFailure() << "host byte " << int{c};
    }
  }
  const size_t slash = h.program.rfind('/');
  const std::string_view daemon =
      slash == std::string_view::npos ? h.program : h.program.substr(slash + 1);
  if (h.daemon != daemon || h.daemon.empty()) {
    return ::testing::AssertionFailure() << "daemon " << h.daemon;
  }
  if (h.message.data() + h.message.size() != line.data() + line.size()) {
    return ::testing::AssertionFailure() << "message does not end the line";
  }
  return ::testing::AssertionSuccess();
}

TEST(SyslogHeaderTest, ClassicSpacePaddedDay) {
  const SyslogHeader h =
      MustParse("Nov  2 10:11:12 relay1 postfix/smtpd[4711]: connect from a.test[192.0.2.9]");
  EXPECT_EQ(h.ts_form, TimestampForm::kClassic);
  EXPECT_EQ(h.month, 11);
  EXPECT_EQ(h.day, 2);
  EXPECT_EQ(h.hour, 10);
  EXPECT_EQ(h.minute, 11);
  EXPECT_EQ(h.second, 12);
  EXPECT_EQ(h.micros, 0);
  EXPECT_EQ(h.host, "relay1");
  EXPECT_EQ(h.program, "postfix/smtpd");
  EXPECT_EQ(h.daemon, "smtpd");
  EXPECT_EQ(h.pid, 4711);
  EXPECT_EQ(h.message, "connect from a.test[192.0.2.9]");
}

TEST(SyslogHeaderTest, ClassicUnpaddedAndZeroPaddedDay) {
  SyslogHeader h = MustParse("Mar 7 01:02:03 mx postfix/qmgr[9]: 4F2A31C0D: removed");
  EXPECT_EQ(h.month, 3);
  EXPECT_EQ(h.day, 7);
  EXPECT_EQ(h.message, "4F2A31C0D: removed");

  h = MustParse("Nov 02 23:59:58 dmz postfix/relay/smtp[77]: x");
  EXPECT_EQ(h.month, 11);
  EXPECT_EQ(h.day, 2);
  EXPECT_EQ(h.hour, 23);
  EXPECT_EQ(h.program, "postfix/relay/smtp");
  EXPECT_EQ(h.daemon, "smtp");

  h = MustParse("Dec 31 00:00:60 mx postfix/qmgr[9]: leap");
  EXPECT_EQ(h.month, 12);
  EXPECT_EQ(h.day, 31);
  EXPECT_EQ(h.second, 60);
}

TEST(SyslogHeaderTest, EveryMonthName) {
  constexpr std::string_view kNames[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  for (int i = 0; i < 12; ++i) {
    const std::string line = std::string(kNames[i]) + " 15 08:00:00 h prog[1]: m";
    EXPECT_EQ(MustParse(line).month, i + 1) << line;
  }
  // Exact case only: syslog writes "Jan", never "JAN" or "jan".
  EXPECT_FALSE(Parses("JAN 15 08:00:00 h prog[1]: m"));
  EXPECT_FALSE(Parses("jan 15 08:00:00 h prog[1]: m"));
  EXPECT_FALSE(Parses("Jum 15 08:00:00 h prog[1]: m"));
}

TEST(SyslogHeaderTest, ClassicWithFraction) {
  SyslogHeader h = MustParse("Jul  4 12:34:56.789012 gw postfix/smtp[31]: m");
  EXPECT_EQ(h.second, 56);
  EXPECT_EQ(h.micros, 789012);
  h = MustParse("Jul  4 12:34:56.5 gw postfix/smtp[31]: m");
  EXPECT_EQ(h.micros, 500000);
  h = MustParse("Jul  4 12:34:56.123456789 gw postfix/smtp[31]: m");
  EXPECT_EQ(h.micros, 123456);  // truncated, not rounded
  EXPECT_EQ(h.host, "gw");
}

TEST(SyslogHeaderTest, Rfc3339WithFractionAndOffset) {
  const SyslogHeader h = MustParse(
      "2023-03-16T23:05:28.376793+01:00 helios postfix/10025/smtpd[5120]: connect from x[::1]");
  EXPECT_EQ(h.ts_form, TimestampForm::kRfc3339);
  // 2023-03-16 22:05:28 UTC.
  EXPECT_EQ(h.utc_us, 1679004328 * kMicros + 376793);
  EXPECT_EQ(h.host, "helios");
  EXPECT_EQ(h.program, "postfix/10025/smtpd");
  EXPECT_EQ(h.daemon, "smtpd");
  EXPECT_EQ(h.pid, 5120);
  EXPECT_EQ(h.message, "connect from x[::1]");
}

TEST(SyslogHeaderTest, Rfc3339OffsetsAllAgree) {
  // One instant, written five ways.
  const int64_t want = 1679004328 * kMicros;
  EXPECT_EQ(MustParse("2023-03-16T22:05:28Z h p[1]: m").utc_us, want);
  EXPECT_EQ(MustParse("2023-03-16T22:05:28z h p[1]: m").utc_us, want);
  EXPECT_EQ(MustParse("2023-03-16T22:05:28+00:00 h p[1]: m").utc_us, want);
  EXPECT_EQ(MustParse("2023-03-16T23:05:28+0100 h p[1]: m").utc_us, want);
  EXPECT_EQ(MustParse("2023-03-16T17:05:28-05:00 h p[1]: m").utc_us, want);
  EXPECT_EQ(MustParse("2023-03-17T03:35:28+05:30 h p[1]: m").utc_us, want);
}

TEST(SyslogHeaderTest, Rfc3339CrossesDayAndYearBoundaries) {
  // A negative offset pushes the UTC instant into the next year.
  EXPECT_EQ(MustParse("1999-12-31T23:59:59-08:00 h p[1]: m").utc_us, 946713599 * kMicros);
  // Leap day.
  EXPECT_EQ(MustParse("2024-02-29T12:00:00-05:30 h p[1]: m").utc_us, 1709227800 * kMicros);
  EXPECT_FALSE(Parses("2023-02-29T12:00:00Z h p[1]: m"));
  EXPECT_FALSE(Parses("2023-13-01T12:00:00Z h p[1]: m"));
  EXPECT_FALSE(Parses("2023-04-31T12:00:00Z h p[1]: m"));
}

TEST(SyslogHeaderTest, Rfc3339CommonAndGeneralFormsAgree) {
  // rsyslog's exact "YYYY-MM-DDThh:mm:ss.ffffff+hh:mm" is read by a fast path; every other
  // spelling of the same instant goes the general way. They must agree.
  const int64_t want = 1679004328 * kMicros + 376793;
  EXPECT_EQ(MustParse("2023-03-16T23:05:28.376793+01:00 h p[1]: m").utc_us, want);
  EXPECT_EQ(MustParse("2023-03-16T23:05:28.376793+0100 h p[1]: m").utc_us, want);
  EXPECT_EQ(MustParse("2023-03-16T23:05:28.3767930+01:00 h p[1]: m").utc_us, want);
  EXPECT_EQ(MustParse("2023-03-16t23:05:28.376793+01:00 h p[1]: m").utc_us, want);
  EXPECT_EQ(MustParse("2023-03-16T22:05:28.376793Z h p[1]: m").utc_us, want);
  EXPECT_EQ(MustParse("2023-03-16T12:35:28.376793-09:30 h p[1]: m").utc_us, want);
  EXPECT_EQ(MustParse("2023-03-16T22:05:28.376793-00:00 h p[1]: m").utc_us, want);
  // Out-of-range fields in the fast path's layout are rejected, not passed on.
  EXPECT_FALSE(Parses("2023-02-29T12:00:00.000000+00:00 h p[1]: m"));
  EXPECT_FALSE(Parses("2023-00-10T12:00:00.000000+00:00 h p[1]: m"));
  EXPECT_FALSE(Parses("2023-03-16T24:00:00.000000+00:00 h p[1]: m"));
  EXPECT_FALSE(Parses("2023-03-16T23:60:00.000000+00:00 h p[1]: m"));
  EXPECT_FALSE(Parses("2023-03-16T23:05:28.000000+24:00 h p[1]: m"));
  EXPECT_FALSE(Parses("2023-03-16T23:05:28.000000*01:00 h p[1]: m"));
  EXPECT_FALSE(Parses("2023-03-16T23:05:28.00a000+01:00 h p[1]: m"));
}

TEST(SyslogHeaderTest, Rfc3339DatesMatchAbslOverCenturies) {
  // Every day from 1900 to 2200, in the fast layout and in a general one, against absl.
  for (absl::CivilDay day(1900, 1, 1); day < absl::CivilDay(2200, 1, 1); ++day) {
    const int64_t want =
        absl::ToUnixMicros(absl::FromCivil(absl::CivilSecond(day) + 45296, absl::UTCTimeZone()));
    const std::string date = absl::StrCat(absl::Dec(day.year(), absl::kZeroPad4), "-",
                                          absl::Dec(day.month(), absl::kZeroPad2), "-",
                                          absl::Dec(day.day(), absl::kZeroPad2));
    const std::string fast = date + "T12:34:56.000007+00:00 h p[1]: m";
    const std::string general = date + "T12:34:56Z h p[1]: m";
    SyslogHeader h;
    ASSERT_TRUE(ParseSyslogHeader(fast, &h)) << fast;
    ASSERT_EQ(h.utc_us, want + 7) << fast;
    ASSERT_TRUE(ParseSyslogHeader(general, &h)) << general;
    ASSERT_EQ(h.utc_us, want) << general;
  }
  // The ends of the four-digit range.
  EXPECT_EQ(MustParse("0000-01-01T00:00:00Z h p[1]: m").utc_us, -62167219200 * kMicros);
  EXPECT_EQ(MustParse("9999-12-31T23:59:59.000000+00:00 h p[1]: m").utc_us, 253402300799 * kMicros);
}

TEST(SyslogHeaderTest, Rfc3339FractionLengths) {
  const int64_t base = 1679004328 * kMicros;
  EXPECT_EQ(MustParse("2023-03-16T22:05:28.1Z h p[1]: m").utc_us, base + 100000);
  EXPECT_EQ(MustParse("2023-03-16T22:05:28.123Z h p[1]: m").utc_us, base + 123000);
  EXPECT_EQ(MustParse("2023-03-16T22:05:28.000042Z h p[1]: m").utc_us, base + 42);
  EXPECT_EQ(MustParse("2023-03-16T22:05:28.999999999Z h p[1]: m").utc_us, base + 999999);
  EXPECT_FALSE(Parses("2023-03-16T22:05:28.Z h p[1]: m"));
}

TEST(SyslogHeaderTest, TruncatedYearIsTwentyYY) {
  // A writer that lost the first digit of the year: "021" is 2021, not year 21.
  const SyslogHeader h = MustParse("021-02-06T10:57:57+01:00 mta postfix/smtpd[812]: m");
  EXPECT_EQ(h.ts_form, TimestampForm::kRfc3339);
  EXPECT_EQ(h.utc_us, 1612605477 * kMicros);
  EXPECT_EQ(MustParse("21-02-06T10:57:57+01:00 mta postfix/smtpd[812]: m").utc_us,
            1612605477 * kMicros);
  EXPECT_FALSE(Parses("1-02-06T10:57:57+01:00 mta postfix/smtpd[812]: m"));
  EXPECT_FALSE(Parses("20210-02-06T10:57:57+01:00 mta postfix/smtpd[812]: m"));
}

TEST(SyslogHeaderTest, ZonelessIsoStampsAreLocalTime) {
  // Dovecot's own log_path stamp, and RFC 3339 without its offset: local time, so they are
  // handed to TimeContext like classic stamps.
  SyslogHeader h = MustParse("2019-11-02 10:11:12 auth-worker(3141): Info: unknown user");
  EXPECT_EQ(h.ts_form, TimestampForm::kClassic);
  EXPECT_EQ(h.month, 11);
  EXPECT_EQ(h.day, 2);
  EXPECT_EQ(h.hour, 10);
  EXPECT_EQ(h.host, "");
  EXPECT_EQ(h.program, "auth-worker(3141)");
  EXPECT_EQ(h.message, "Info: unknown user");

  h = MustParse("2019-11-02T10:11:12.25 mx postfix/pickup[8]: m");
  EXPECT_EQ(h.ts_form, TimestampForm::kClassic);
  EXPECT_EQ(h.micros, 250000);
  EXPECT_EQ(h.host, "mx");
}

TEST(SyslogHeaderTest, HostAbsent) {
  SyslogHeader h = MustParse("Jan 29 13:54:06 auth-worker(2718): Info: sql(u@x.test): unknown");
  EXPECT_EQ(h.host, "");
  EXPECT_EQ(h.program, "auth-worker(2718)");
  EXPECT_EQ(h.pid, -1);
  EXPECT_EQ(h.message, "Info: sql(u@x.test): unknown");

  h = MustParse("Feb  3 04:05:06 postfix/pickup[1234]: 5D1E92A0B: uid=0 from=<root>");
  EXPECT_EQ(h.host, "");
  EXPECT_EQ(h.program, "postfix/pickup");
  EXPECT_EQ(h.pid, 1234);
  EXPECT_EQ(h.message, "5D1E92A0B: uid=0 from=<root>");

  // "dovecot: imap-login: ..." without a host: the first token is the program even though the
  // second also ends in ':'.
  h = MustParse("Aug 30 00:11:05 dovecot: imap-login: Login: user=<a@b.test>");
  EXPECT_EQ(h.host, "");
  EXPECT_EQ(h.program, "dovecot");
  EXPECT_EQ(h.message, "imap-login: Login: user=<a@b.test>");
}

TEST(SyslogHeaderTest, PidAbsent) {
  const SyslogHeader h = MustParse("Jun 12 11:48:12 box dovecot: imap-login: Login: user=<z>");
  EXPECT_EQ(h.host, "box");
  EXPECT_EQ(h.program, "dovecot");
  EXPECT_EQ(h.daemon, "dovecot");
  EXPECT_EQ(h.pid, -1);
  EXPECT_EQ(h.message, "imap-login: Login: user=<z>");
}

TEST(SyslogHeaderTest, MissingColonAfterPid) {
  SyslogHeader h = MustParse(
      "2022-05-01T08:09:10.5+02:00 out.example.net postfix/cleanup[4242] 9C1B2D3E4F: "
      "message-id=<q@w>");
  EXPECT_EQ(h.host, "out.example.net");
  EXPECT_EQ(h.program, "postfix/cleanup");
  EXPECT_EQ(h.pid, 4242);
  EXPECT_EQ(h.message, "9C1B2D3E4F: message-id=<q@w>");

  h = MustParse("Oct  1 00:00:01 relay postfix/smtpd[7] disconnect from a[192.0.2.1]");
  EXPECT_EQ(h.program, "postfix/smtpd");
  EXPECT_EQ(h.message, "disconnect from a[192.0.2.1]");
}

TEST(SyslogHeaderTest, ProgramPrefixesAndOtherPrograms) {
  struct Case {
    std::string_view line, program, daemon;
    int64_t pid;
  };
  const Case cases[] = {
      {"Jan  5 01:01:01 h postfix/submission/smtpd[3]: m", "postfix/submission/smtpd", "smtpd", 3},
      {"Jan  5 01:01:01 h postfix-dmz/smtp[4]: m", "postfix-dmz/smtp", "smtp", 4},
      {"Jan  5 01:01:01 h postfix-10.1.2.3/smtp[5]: m", "postfix-10.1.2.3/smtp", "smtp", 5},
      {"Jan  5 01:01:01 h postfix/amavis/smtp[6]: m", "postfix/amavis/smtp", "smtp", 6},
      {"Jan  5 01:01:01 h amavis[918273]: (918273-01) Passed", "amavis", "amavis", 918273},
      {"Jan  5 01:01:01 h opendkim[1]: m", "opendkim", "opendkim", 1},
      {"Jan  5 01:01:01 h postfix1[8]: m", "postfix1", "postfix1", 8},
      {"Jan  5 01:01:01 h /postfix-script[9]: m", "/postfix-script", "postfix-script", 9},
      {"Jan  5 01:01:01 h postfix-10.20.30.40/something[9]: m", "postfix-10.20.30.40/something",
       "something", 9},
      {"Jan  5 01:01:01 h a/b/c/d/e/f/g/h/i/j/k[9]: m", "a/b/c/d/e/f/g/h/i/j/k", "k", 9},
  };
  for (const Case& c : cases) {
    const SyslogHeader h = MustParse(c.line);
    EXPECT_EQ(h.host, "h") << c.line;
    EXPECT_EQ(h.program, c.program) << c.line;
    EXPECT_EQ(h.daemon, c.daemon) << c.line;
    EXPECT_EQ(h.pid, c.pid) << c.line;
  }
}

TEST(SyslogHeaderTest, Ipv6HostIsAHostNotAProgram) {
  // The first token has ':' in it but is not terminated like a program.
  const SyslogHeader h = MustParse("Jan  5 01:01:01 2001:db8::25 postfix/smtpd[3]: m");
  EXPECT_EQ(h.host, "2001:db8::25");
  EXPECT_EQ(h.program, "postfix/smtpd");
}

TEST(SyslogHeaderTest, LongAndShortTokens) {
  // Hosts and programs of every length around the eight-byte steps of the scanner.
  for (int host_len = 1; host_len <= 20; ++host_len) {
    for (int prog_len = 1; prog_len <= 26; ++prog_len) {
      const std::string host(host_len, 'h');
      std::string program(prog_len, 'p');
      if (prog_len > 2) program[prog_len / 2] = '/';
      const std::string line = "Jan  5 01:01:01 " + host + " " + program + "[42]: m";
      SyslogHeader h;
      ASSERT_TRUE(ParseSyslogHeader(line, &h)) << line;
      EXPECT_EQ(h.host, host) << line;
      EXPECT_EQ(h.program, program) << line;
      EXPECT_EQ(h.daemon, prog_len > 2 ? program.substr(prog_len / 2 + 1) : program) << line;
      EXPECT_EQ(h.pid, 42);
      EXPECT_EQ(h.message, "m");
    }
  }
}

TEST(SyslogHeaderTest, BadByteAnywhereInProgramIsNeverKept) {
  // One bad byte at each position of host and program: the line is rejected, or whatever is
  // accepted holds no bad byte.
  const std::string base = "Jan  5 01:01:01 relay-host.example postfix-10.20.30.40/smtp[42]: m";
  const char bad[] = {'\x01', '\x7f', '\x80', '\xff', '[', ']', ':', ' ', '\0', '\t'};
  for (size_t pos = 16; pos < base.find("[42]"); ++pos) {
    for (char c : bad) {
      std::string line = base;
      line[pos] = c;
      SyslogHeader h;
      if (ParseSyslogHeader(line, &h)) {
        EXPECT_TRUE(HeaderIsClean(line, h)) << pos << " " << int{c};
      }
    }
  }
}

TEST(SyslogHeaderTest, EmptyMessageAfterColon) {
  SyslogHeader h = MustParse("Jan  5 01:01:01 h postfix/smtpd[3]:");
  EXPECT_EQ(h.message, "");
  h = MustParse("Jan  5 01:01:01 h postfix/smtpd[3]: ");
  EXPECT_EQ(h.message, "");
  // The message keeps its own leading blanks beyond the one separator.
  h = MustParse("Jan  5 01:01:01 h postfix/smtpd[3]:   indented");
  EXPECT_EQ(h.message, "  indented");
}

TEST(SyslogHeaderTest, LeadingJunkIsSkipped) {
  const std::string line =
      std::string("\0\0\0\0", 4) + "Sep  9 09:09:09 h postfix/qmgr[12]: 1A2B3C: removed";
  SyslogHeader h = MustParse(line);
  EXPECT_EQ(h.month, 9);
  EXPECT_EQ(h.program, "postfix/qmgr");
  EXPECT_EQ(h.message, "1A2B3C: removed");

  h = MustParse("  \tSep  9 09:09:09 h postfix/qmgr[12]: x");
  EXPECT_EQ(h.host, "h");
  h = MustParse("\xEF\xBB\xBFSep  9 09:09:09 h postfix/qmgr[12]: x");
  EXPECT_EQ(h.host, "h");
  // A forwarded datagram's priority.
  h = MustParse("<22>Sep  9 09:09:09 h postfix/qmgr[12]: x");
  EXPECT_EQ(h.host, "h");
  EXPECT_EQ(h.program, "postfix/qmgr");
  h = MustParse("<22>2023-03-16T22:05:28Z h postfix/qmgr[12]: x");
  EXPECT_EQ(h.utc_us, 1679004328 * kMicros);
}

TEST(SyslogHeaderTest, MalformedLinesAreRejected) {
  const std::string_view bad[] = {
      "",
      "Jan",
      "Jan 1 00:00:00",
      "Jan 1 00:00:00 ",
      "Jan 1 00:00:00 hostname",
      "Jan 1 00:00:00 hostname ",
      "Foo 1 00:00:00 hostname prog[1]: x",
      "Jan: 1 00:00:00 hostname postfix/postscreen[2]: x",
      "Jan 1 00:00:00 hostname postfix/postscreen[12345",
      "Jan 1 00:00:00 hostname postfix/postscreen[12345]",
      "Jan 1 00:00:00 hostname postfix/postscreen",
      "Jan 1 00:00:00 hostname postfix/postscreen[abcde]: foo",
      "Jan 1 00:00:00 hostname postfix/postscreen[]: foo",
      "Jan 1 00:00:00 hostname postfix/postscreen[1]x foo",
      "Jan 1 00:00:00 hostname postfix/: foo",
      "Jan 1 00:00:00 hostname prog:foo",
      "Jan 32 00:00:00 h p[1]: x",
      "Jan 0 00:00:00 h p[1]: x",
      "Jan 1 24:00:00 h p[1]: x",
      "Jan 1 00:60:00 h p[1]: x",
      "Jan 1 0:00:00 h p[1]: x",
      "Jan 1 00:00:00h p[1]: x",
      "Jan 123 00:00:00 h p[1]: x",
      "Jan 1 00:00:00 h\xC3\xA9t\xC3\xA9 p[1]: x",
      "2023-03-16T22:05:28+01 h p[1]: x",
      "2023-03-16T22:05 h p[1]: x",
      "2023-03-16X22:05:28Z h p[1]: x",
      "just some text",
      std::string_view("\0\0\0", 3),
      "Jan 1 00:00:00 h p\x01q[1]: x",
  };
  for (std::string_view line : bad) {
    EXPECT_FALSE(Parses(line)) << "accepted: " << line;
  }
}

TEST(SyslogHeaderTest, NeverReadsPastTheView) {
  // Every prefix of valid lines, in a buffer of its own size, so ASan sees any overread.
  const std::string_view lines[] = {
      "2023-03-16T23:05:28.376793+01:00 helios postfix/10025/smtpd[5120]: connect",
      "Nov  2 10:11:12.5 relay1 postfix/smtpd[4711]: connect from a.test[192.0.2.9]",
      "<13>Nov 02 10:11:12 postfix/smtpd[4711] connect",
      "021-02-06T10:57:57+0100 mta postfix/smtpd[812]: m",
  };
  for (std::string_view line : lines) {
    for (size_t n = 0; n <= line.size(); ++n) {
      std::vector<char> buffer(line.begin(), line.begin() + n);
      SyslogHeader h;
      const bool ok = ParseSyslogHeader(std::string_view(buffer.data(), n), &h);
      if (ok) {
        // Whatever was read lies inside the buffer.
        EXPECT_GE(h.message.data(), buffer.data());
        EXPECT_LE(h.message.data() + h.message.size(), buffer.data() + n);
      }
    }
  }
}

TEST(SyslogHeaderTest, LongLineAndBinaryMessage) {
  std::string line = "Jan  1 00:00:00 h postfix/postscreen[1]: ";
  line.append(65536, '\xFF');
  line.push_back('\0');
  const SyslogHeader h = MustParse(line);
  EXPECT_EQ(h.message.size(), 65537u);
}

// Runs the header parser over every line of the shared corpus: a real syslog line that gets no
// header is a parser bug. Skipped when the corpus is not beside the work tree.
TEST(SyslogHeaderCorpusTest, EveryCorpusLineGetsAHeader) {
  const char* shared = std::getenv("MAILLENS_SHARED_DIR");
  if (shared == nullptr) GTEST_FAIL() << "MAILLENS_SHARED_DIR not set";
  const std::string path = std::string(shared) + "/corpus/all_lines.txt";
  std::ifstream in(path, std::ios::binary);
  if (!in) GTEST_FAIL() << "cannot open " << path;
  std::string data;
  in.seekg(0, std::ios::end);
  data.resize(static_cast<size_t>(in.tellg()));
  in.seekg(0);
  in.read(data.data(), static_cast<std::streamsize>(data.size()));
  ASSERT_TRUE(in) << "cannot read " << path;

  int64_t lines = 0, parsed = 0, rfc3339 = 0, no_host = 0;
  std::vector<std::string_view> failures;
  size_t start = 0;
  while (start < data.size()) {
    size_t nl = data.find('\n', start);
    if (nl == std::string::npos) nl = data.size();
    const std::string_view line(data.data() + start, nl - start);
    start = nl + 1;
    ++lines;
    SyslogHeader h;
    if (ParseSyslogHeader(line, &h)) {
      ++parsed;
      if (h.ts_form == TimestampForm::kRfc3339) ++rfc3339;
      if (h.host.empty()) ++no_host;
      EXPECT_TRUE(HeaderIsClean(line, h)) << line;
    } else {
      failures.push_back(line);
    }
  }
  std::cout << "corpus: " << lines << " lines, " << parsed << " with a header (" << rfc3339
            << " RFC 3339, " << no_host << " without host), " << failures.size() << " without\n";
  for (size_t i = 0; i < failures.size() && i < 20; ++i) {
    std::cout << "  no header: " << failures[i].substr(0, 160) << "\n";
  }
  EXPECT_GE(lines, 80000);
  EXPECT_GE(parsed, 80500);
}

}  // namespace
}  // namespace maillens::core
