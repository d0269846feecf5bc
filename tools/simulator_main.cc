// maillens-simulate: writes a simulated site's maillogs and their ground truth. Flags are
// parsed here only; tools/simulator.h does the work.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "tools/simulator.h"

namespace {

constexpr char kUsage[] =
    "usage: maillens-simulate --out DIR [options]\n"
    "Writes DIR/<host>.log for each host and DIR/truth.jsonl (ground truth, JSON Lines).\n"
    "  --seed N               random seed (default 1); same options and seed, same bytes\n"
    "  --lines N              about N lines in total (default 100000)\n"
    "  --messages N           N message scenarios instead (noise added in proportion)\n"
    "  --start TIME           RFC 3339 start, true UTC (default 2024-12-31T22:00:00Z)\n"
    "  --hours H              length of the run (default 4)\n"
    "  --hosts LIST           dmz,mx[,out] (default dmz,mx)\n"
    "  --skew H=S,...         clock offset of a host in seconds, e.g. mx=+90,out=-30\n"
    "  --stamp H=F,...        classic | classic0 (zero-padded day) | rfc3339\n"
    "                         (default dmz=classic, mx=rfc3339, out=classic)\n"
    "  --long-ids LIST        hosts with enable_long_queue_ids, e.g. mx\n"
    "  --tz OFFSET            local zone of every host, e.g. +01:00 (default +00:00)\n"
    "  --mix K=W,...          traffic weights: inbound outbound internal pickup spam reject\n"
    "                         sasl noise content (defaults 40 20 5 4 3 12 6 10 0; content:\n"
    "                         header/body checks and milters refusing mail in cleanup)\n"
    "  --queue-lifetime MIN   maximal_queue_lifetime in minutes (default 60)\n"
    "  --reuse-rate P         share of new short queue IDs that reuse an old one (0.02)\n"
    "  --late-expiry-rate P   share of expiries logged after 'removed', their ID reused (0)\n"
    "  --collision-rate P     share of foreign Postfix IDs equal to one of ours (0.3)\n"
    "  --unknown-rate P  --defer-rate P  --expire-rate P  --reject-rate P\n"
    "                         per-recipient fates (0.03 0.04 0.008 0.03)\n"
    "  --no-cut               let every message finish, even after the end of the span\n"
    "  --no-dovecot           no dovecot lines beside LMTP deliveries\n"
    "  --loopback             hosts on 127.0.0.2-4 of one machine, partner.test's MX on\n"
    "                         127.0.0.25, half of amavis's replies without its MTA prefix\n"
    "Files beside the logs (the truth stays that of the logs):\n"
    "  --extracts             DIR/<host>.extract.log: a slice of each log, byte for byte\n"
    "  --extract-range F:T    --extracts from line F to T, fractions of the log (0.3:0.6)\n"
    "  --syslog-copies        DIR/<host>.syslog-copy.log: each log's tail, byte for byte\n"
    "  --copy-from F          --syslog-copies from line F, a fraction of the log (0.8)\n"
    "  --non-maillogs         DIR/dovecot.log (Dovecot's log_path file) and DIR/README.txt\n"
    "  --dovecot-lines N      --non-maillogs, about N lines in dovecot.log (2000)\n";

bool Fail(const std::string& message) {
  std::fprintf(stderr, "maillens-simulate: %s\n", message.c_str());
  return false;
}

bool ParseDouble(const std::string& s, double* out) {
  std::string t = s;
  if (!t.empty() && t[0] == '+') t = t.substr(1);
  return absl::SimpleAtod(t, out);
}

// "+01:00", "-05:30", "+0100", "Z" or "UTC".
bool ParseOffset(const std::string& s, absl::Duration* out) {
  if (s == "Z" || s == "UTC" || s == "z") {
    *out = absl::ZeroDuration();
    return true;
  }
  if (s.size() < 3 || (s[0] != '+' && s[0] != '-')) return false;
  std::string digits;
  for (char c : s.substr(1)) {
    if (c != ':') digits.push_back(c);
  }
  int hh = 0, mm = 0;
  if (digits.size() == 2) {
    if (!absl::SimpleAtoi(digits, &hh)) return false;
  } else if (digits.size() == 4) {
    if (!absl::SimpleAtoi(digits.substr(0, 2), &hh) || !absl::SimpleAtoi(digits.substr(2), &mm)) {
      return false;
    }
  } else {
    return false;
  }
  *out = (absl::Hours(hh) + absl::Minutes(mm)) * (s[0] == '-' ? -1 : 1);
  return true;
}

maillens::tools::SimHostOptions* FindHost(std::vector<maillens::tools::SimHostOptions>* hosts,
                                          const std::string& name) {
  for (auto& h : *hosts) {
    if (h.name == name) return &h;
  }
  return nullptr;
}

// Splits "a=1,b=2" into pairs; false on an element without '='.
bool Pairs(const std::string& s, std::vector<std::pair<std::string, std::string>>* out) {
  for (absl::string_view part : absl::StrSplit(s, ',', absl::SkipEmpty())) {
    const size_t eq = part.find('=');
    if (eq == absl::string_view::npos) return false;
    out->emplace_back(std::string(part.substr(0, eq)), std::string(part.substr(eq + 1)));
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  using maillens::tools::SimHostOptions;
  using maillens::tools::StampForm;
  maillens::tools::SimulatorOptions options;
  std::string out_dir, hosts_flag = "dmz,mx", skew_flag, stamp_flag, long_flag, mix_flag;
  std::vector<std::string> args(argv + 1, argv + argc);
  bool ok = true;
  for (size_t i = 0; i < args.size() && ok; ++i) {
    std::string flag = args[i], value;
    const size_t eq = flag.find('=');
    const bool boolean = flag == "--no-cut" || flag == "--no-dovecot" || flag == "--loopback" ||
                         flag == "--extracts" || flag == "--syslog-copies" ||
                         flag == "--non-maillogs" || flag == "--help" || flag == "-h";
    if (flag.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
    } else if (!boolean) {
      if (i + 1 >= args.size()) {
        ok = Fail(absl::StrCat(flag, " needs a value"));
        break;
      }
      value = args[++i];
    }
    double d = 0;
    int64_t n = 0;
    if (flag == "--help" || flag == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (flag == "--out") {
      out_dir = value;
    } else if (flag == "--seed") {
      uint64_t seed = 0;
      ok = absl::SimpleAtoi(value, &seed) || Fail("bad --seed");
      options.seed = seed;
    } else if (flag == "--lines") {
      ok = (absl::SimpleAtoi(value, &n) && n > 0) || Fail("bad --lines");
      options.target_lines = n;
    } else if (flag == "--messages") {
      ok = (absl::SimpleAtoi(value, &n) && n > 0) || Fail("bad --messages");
      options.messages = n;
    } else if (flag == "--start") {
      std::string error;
      ok = absl::ParseTime(absl::RFC3339_full, value, &options.start, &error) ||
           Fail(absl::StrCat("bad --start: ", error));
    } else if (flag == "--hours") {
      ok = (ParseDouble(value, &d) && d > 0) || Fail("bad --hours");
      options.duration = absl::Seconds(d * 3600);
    } else if (flag == "--hosts") {
      hosts_flag = value;
    } else if (flag == "--skew") {
      skew_flag = value;
    } else if (flag == "--stamp") {
      stamp_flag = value;
    } else if (flag == "--long-ids") {
      long_flag = value;
    } else if (flag == "--tz") {
      ok = ParseOffset(value, &options.zone_offset) || Fail("bad --tz (want +01:00)");
    } else if (flag == "--mix") {
      mix_flag = value;
    } else if (flag == "--queue-lifetime") {
      ok = (ParseDouble(value, &d) && d > 0) || Fail("bad --queue-lifetime");
      options.queue_lifetime = absl::Seconds(d * 60);
    } else if (flag == "--reuse-rate" || flag == "--collision-rate" || flag == "--unknown-rate" ||
               flag == "--defer-rate" || flag == "--expire-rate" || flag == "--reject-rate" ||
               flag == "--late-expiry-rate") {
      ok = (ParseDouble(value, &d) && d >= 0 && d <= 1) || Fail(absl::StrCat("bad ", flag));
      if (flag == "--reuse-rate") options.reuse_rate = d;
      if (flag == "--collision-rate") options.foreign_collision_rate = d;
      if (flag == "--unknown-rate") options.unknown_user_rate = d;
      if (flag == "--defer-rate") options.defer_rate = d;
      if (flag == "--expire-rate") options.expire_rate = d;
      if (flag == "--reject-rate") options.reject_rcpt_rate = d;
      if (flag == "--late-expiry-rate") options.expiry_after_removed_rate = d;
    } else if (flag == "--no-cut") {
      options.cut_at_end = false;
    } else if (flag == "--no-dovecot") {
      options.dovecot_lines = false;
    } else if (flag == "--loopback") {
      options.loopback_hosts = true;
    } else if (flag == "--extracts") {
      options.extra_files.extracts = true;
    } else if (flag == "--extract-range") {
      const std::vector<std::string> parts = absl::StrSplit(value, ':');
      ok = (parts.size() == 2 && ParseDouble(parts[0], &options.extra_files.extract_from) &&
            ParseDouble(parts[1], &options.extra_files.extract_to)) ||
           Fail("bad --extract-range (want 0.3:0.6)");
      options.extra_files.extracts = true;
    } else if (flag == "--syslog-copies") {
      options.extra_files.syslog_copies = true;
    } else if (flag == "--copy-from") {
      ok = ParseDouble(value, &options.extra_files.copy_from) || Fail("bad --copy-from");
      options.extra_files.syslog_copies = true;
    } else if (flag == "--non-maillogs") {
      options.extra_files.non_maillogs = true;
    } else if (flag == "--dovecot-lines") {
      ok = (absl::SimpleAtoi(value, &n) && n > 0) || Fail("bad --dovecot-lines");
      options.extra_files.dovecot_lines = n;
      options.extra_files.non_maillogs = true;
    } else {
      ok = Fail(absl::StrCat("unknown option '", flag, "'"));
    }
  }
  if (ok && out_dir.empty()) ok = Fail("--out DIR is required");

  // Hosts, then the per-host settings that name them.
  std::vector<SimHostOptions> defaults = maillens::tools::DefaultSimHosts();
  for (absl::string_view name : absl::StrSplit(hosts_flag, ',', absl::SkipEmpty())) {
    if (!ok) break;
    SimHostOptions h;
    h.name = std::string(name);
    h.stamp = StampForm::kClassic;
    if (SimHostOptions* d = FindHost(&defaults, h.name)) h = *d;
    options.hosts.push_back(h);
  }
  std::vector<std::pair<std::string, std::string>> pairs;
  if (ok && !Pairs(skew_flag, &pairs)) ok = Fail("bad --skew (want mx=+90)");
  for (const auto& [name, value] : pairs) {
    if (!ok) break;
    SimHostOptions* h = FindHost(&options.hosts, name);
    double secs = 0;
    if (h == nullptr) ok = Fail(absl::StrCat("--skew names unknown host ", name));
    if (ok) ok = ParseDouble(value, &secs) || Fail(absl::StrCat("bad skew ", value));
    if (ok) h->skew = absl::Seconds(secs);
  }
  pairs.clear();
  if (ok && !Pairs(stamp_flag, &pairs)) ok = Fail("bad --stamp (want dmz=classic)");
  for (const auto& [name, value] : pairs) {
    if (!ok) break;
    SimHostOptions* h = FindHost(&options.hosts, name);
    if (h == nullptr) {
      ok = Fail(absl::StrCat("--stamp names unknown host ", name));
    } else if (value == "classic") {
      h->stamp = StampForm::kClassic;
    } else if (value == "classic0") {
      h->stamp = StampForm::kClassicZeroPadded;
    } else if (value == "rfc3339") {
      h->stamp = StampForm::kRfc3339;
    } else {
      ok = Fail(absl::StrCat("unknown stamp form ", value));
    }
  }
  for (absl::string_view name : absl::StrSplit(long_flag, ',', absl::SkipEmpty())) {
    if (!ok) break;
    SimHostOptions* h = FindHost(&options.hosts, std::string(name));
    if (h == nullptr) {
      ok = Fail(absl::StrCat("--long-ids names unknown host ", std::string(name)));
    } else {
      h->long_queue_ids = true;
    }
  }
  pairs.clear();
  if (ok && !Pairs(mix_flag, &pairs)) ok = Fail("bad --mix (want inbound=40,spam=3)");
  for (const auto& [name, value] : pairs) {
    if (!ok) break;
    double w = 0;
    ok = (ParseDouble(value, &w) && w >= 0) || Fail(absl::StrCat("bad weight ", value));
    maillens::tools::TrafficMix& m = options.mix;
    double* slot = name == "inbound"    ? &m.inbound
                   : name == "outbound" ? &m.outbound
                   : name == "internal" ? &m.internal
                   : name == "pickup"   ? &m.pickup
                   : name == "spam"     ? &m.spam
                   : name == "reject"   ? &m.reject
                   : name == "sasl"     ? &m.sasl_noise
                   : name == "noise"    ? &m.connection_noise
                   : name == "content"  ? &m.content_check
                                        : nullptr;
    if (ok && slot == nullptr) ok = Fail(absl::StrCat("unknown traffic kind ", name));
    if (ok) *slot = w;
  }
  if (!ok) {
    std::fputs("run 'maillens-simulate --help' for the options\n", stderr);
    return 2;
  }

  const auto started = std::chrono::steady_clock::now();
  absl::StatusOr<maillens::tools::SimulatorSummary> summary =
      maillens::tools::SimulateToDirectory(options, out_dir);
  if (!summary.ok()) {
    std::fprintf(stderr, "maillens-simulate: %s\n", summary.status().ToString().c_str());
    return 1;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::printf("%s\n", maillens::tools::SummaryJson(*summary).c_str());
  std::fprintf(stderr, "maillens-simulate: %lld lines in %.2f s\n",
               static_cast<long long>(summary->lines), seconds);
  for (const maillens::tools::ExtraFile& f : summary->extra_files) {
    if (f.host.empty()) {
      std::fprintf(stderr, "maillens-simulate: %s: %lld lines, not a maillog\n", f.name.c_str(),
                   static_cast<long long>(f.lines));
    } else {
      std::fprintf(stderr, "maillens-simulate: %s: lines %lld-%lld of %s.log\n", f.name.c_str(),
                   static_cast<long long>(f.first_line + 1),
                   static_cast<long long>(f.first_line + f.lines), f.host.c_str());
    }
  }
  return 0;
}
