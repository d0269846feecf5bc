// The simulator against itself and against the project's parser: the logs must read as
// Postfix logs, and the truth must say exactly what the logs show.
#include "tools/simulator.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "core/event.h"
#include "core/parser.h"
#include "core/queue_id.h"
#include "core/syslog_header.h"
#include "core/time_context.h"
#include "gtest/gtest.h"

namespace maillens::tools {
namespace {

// ---- a small JSON reader for the truth file (objects, arrays, strings, integers, bools) ----

struct Json {
  enum Type { kNull, kBool, kNumber, kString, kArray, kObject } type = kNull;
  bool b = false;
  int64_t n = 0;
  std::string s;
  std::vector<Json> items;
  std::vector<std::pair<std::string, Json>> fields;

  const Json& operator[](const std::string& key) const {
    static const Json kMissing;
    for (const auto& [k, v] : fields) {
      if (k == key) return v;
    }
    return kMissing;
  }
  bool Has(const std::string& key) const {
    return std::any_of(fields.begin(), fields.end(), [&](const auto& f) { return f.first == key; });
  }
};

class JsonReader {
 public:
  explicit JsonReader(std::string_view text) : t_(text) {}
  bool Read(Json* out) {
    if (!Value(out)) return false;
    Space();
    return i_ == t_.size();
  }

 private:
  void Space() {
    while (i_ < t_.size() && (t_[i_] == ' ' || t_[i_] == '\n')) ++i_;
  }
  bool Eat(char c) {
    Space();
    if (i_ < t_.size() && t_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  bool String(std::string* out) {
    if (!Eat('"')) return false;
    while (i_ < t_.size() && t_[i_] != '"') {
      if (t_[i_] == '\\') {
        if (++i_ >= t_.size()) return false;
        if (t_[i_] == 'u') {
          if (i_ + 4 >= t_.size()) return false;
          out->push_back(
              static_cast<char>(std::stoi(std::string(t_.substr(i_ + 1, 4)), nullptr, 16)));
          i_ += 5;
          continue;
        }
      }
      out->push_back(t_[i_++]);
    }
    return Eat('"');
  }
  bool Value(Json* out) {
    Space();
    if (i_ >= t_.size()) return false;
    const char c = t_[i_];
    if (c == '{') {
      out->type = Json::kObject;
      ++i_;
      if (Eat('}')) return true;
      do {
        std::string key;
        Json v;
        if (!String(&key) || !Eat(':') || !Value(&v)) return false;
        out->fields.emplace_back(std::move(key), std::move(v));
      } while (Eat(','));
      return Eat('}');
    }
    if (c == '[') {
      out->type = Json::kArray;
      ++i_;
      if (Eat(']')) return true;
      do {
        Json v;
        if (!Value(&v)) return false;
        out->items.push_back(std::move(v));
      } while (Eat(','));
      return Eat(']');
    }
    if (c == '"') {
      out->type = Json::kString;
      return String(&out->s);
    }
    if (t_.substr(i_, 4) == "true" || t_.substr(i_, 5) == "false") {
      out->type = Json::kBool;
      out->b = t_[i_] == 't';
      i_ += out->b ? 4 : 5;
      return true;
    }
    size_t j = i_;
    if (j < t_.size() && t_[j] == '-') ++j;
    while (j < t_.size() && t_[j] >= '0' && t_[j] <= '9') ++j;
    if (j == i_) return false;
    out->type = Json::kNumber;
    out->n = std::stoll(std::string(t_.substr(i_, j - i_)));
    i_ = j;
    return true;
  }

  std::string_view t_;
  size_t i_ = 0;
};

// ---- running the simulator in memory ------------------------------------------------------

class MemorySink : public SimulatorSink {
 public:
  void Line(int host, std::string_view line) override {
    if (static_cast<int>(lines.size()) <= host) lines.resize(host + 1);
    lines[host].emplace_back(line);
  }
  void Truth(std::string_view json) override { truth.emplace_back(json); }

  std::vector<std::vector<std::string>> lines;
  std::vector<std::string> truth;
};

struct Output {
  SimulatorSummary summary;
  std::vector<std::string> host_names;
  std::vector<std::vector<std::string>> lines;
  std::vector<std::string> truth_text;
  std::vector<Json> truth;  // every object but the summary
  Json summary_json;
};

Output RunSim(const SimulatorOptions& options) {
  MemorySink sink;
  absl::StatusOr<SimulatorSummary> summary = Simulate(options, &sink);
  EXPECT_TRUE(summary.ok()) << summary.status();
  Output out;
  if (!summary.ok()) return out;
  out.summary = *summary;
  for (const auto& [name, n] : summary->lines_per_host) out.host_names.push_back(name);
  out.lines = std::move(sink.lines);
  out.lines.resize(out.host_names.size());
  out.truth_text = std::move(sink.truth);
  for (const std::string& text : out.truth_text) {
    Json j;
    EXPECT_TRUE(JsonReader(text).Read(&j)) << text;
    if (j.Has("summary")) {
      out.summary_json = std::move(j);
    } else {
      out.truth.push_back(std::move(j));
    }
  }
  return out;
}

SimulatorOptions NewYearOptions(int64_t lines) {
  SimulatorOptions o;
  o.seed = 42;
  o.start = absl::FromUnixSeconds(1735682400);  // 2024-12-31T22:00:00Z
  o.duration = absl::Hours(4);
  o.target_lines = lines;
  o.zone_offset = absl::Hours(1);
  SimHostOptions dmz;
  dmz.name = "dmz";
  dmz.stamp = StampForm::kClassic;
  SimHostOptions mx;
  mx.name = "mx";
  mx.stamp = StampForm::kRfc3339;
  mx.skew = absl::Seconds(90);
  o.hosts = {dmz, mx};
  return o;
}

// ---- the logs through the project's parser ------------------------------------------------

// One message instance as the log shows it: from a queue ID's first line to its "removed".
struct LogInstance {
  std::string queue_id;
  int64_t first_us = 0;
};

struct ParsedLine {
  core::Kind kind;
  int64_t time_us;
  std::string program, queue_id, queued_as, relay_host, status, message, notice_id;
  core::NextHopForm form;
  int instance = -1;  // index into ParsedHost::instances
};

struct ParsedHost {
  std::vector<ParsedLine> lines;
  std::vector<LogInstance> instances;
};

// Parses one host's lines as an importer would (classic stamps: the run's first year and the
// zone), splitting queue IDs into instances at "removed" and at cleanup's refusals (which are
// final); an expiry logged after "removed" is the removed instance's.
ParsedHost ParseHost(const std::vector<std::string>& lines, int year, absl::Duration zone) {
  core::TimeOptions time_options;
  time_options.year = year;
  time_options.zone = absl::FixedTimeZone(static_cast<int>(absl::ToInt64Seconds(zone)));
  core::TimeContext time(time_options);
  ParsedHost out;
  std::map<std::string, int> open;     // queue ID -> instance not yet removed
  std::map<std::string, int> removed;  // queue ID -> the instance removed last
  for (const std::string& line : lines) {
    const core::Event ev = core::ParseLine(line, &time);
    ParsedLine p;
    p.kind = ev.kind;
    p.time_us = ev.time_us;
    p.program = std::string(ev.program);
    p.queue_id = std::string(ev.queue_id);
    p.queued_as = std::string(ev.queued_as);
    p.relay_host = std::string(ev.Get(core::Field::kRelayHost));
    p.status = std::string(ev.Get(core::Field::kStatus));
    p.message = std::string(ev.message);
    p.notice_id = std::string(ev.Get(core::Field::kNoticeQueueId));
    p.form = ev.queued_as_form;
    if (!p.queue_id.empty() && p.queue_id != "NOQUEUE" && p.program.rfind("postfix/", 0) == 0) {
      auto it = open.find(p.queue_id);
      auto late = removed.find(p.queue_id);
      if (it == open.end() && p.kind == core::Kind::kExpired && late != removed.end()) {
        p.instance = late->second;
        removed.erase(late);
        out.lines.push_back(std::move(p));
        continue;
      }
      if (it == open.end()) {
        out.instances.push_back(LogInstance{p.queue_id, p.time_us});
        it = open.emplace(p.queue_id, static_cast<int>(out.instances.size()) - 1).first;
      }
      p.instance = it->second;
      const bool cleanup_refusal =
          p.program == "postfix/cleanup" &&
          (p.kind == core::Kind::kReject ||
           (p.kind == core::Kind::kCheckAction && ev.Get(core::Field::kAction) == "discard"));
      if (p.kind == core::Kind::kRemoved || cleanup_refusal) {
        removed[p.queue_id] = it->second;
        open.erase(it);
      }
    }
    out.lines.push_back(std::move(p));
  }
  return out;
}

std::vector<ParsedHost> ParseAll(const Output& out, int year, absl::Duration zone) {
  std::vector<ParsedHost> hosts;
  for (const auto& lines : out.lines) hosts.push_back(ParseHost(lines, year, zone));
  return hosts;
}

using Endpoint = std::tuple<std::string, std::string, int64_t>;  // host, queue ID, first_us

Endpoint EndpointOf(const Json& j) { return {j["host"].s, j["queue_id"].s, j["first_us"].n}; }

// ---- tests --------------------------------------------------------------------------------

TEST(SimulatorTest, SameSeedSameBytesOtherSeedOtherBytes) {
  SimulatorOptions o = NewYearOptions(15000);
  const Output a = RunSim(o);
  const Output b = RunSim(o);
  ASSERT_FALSE(a.lines.empty());
  EXPECT_EQ(a.lines, b.lines);
  EXPECT_EQ(a.truth_text, b.truth_text);
  o.seed = 43;
  const Output c = RunSim(o);
  EXPECT_NE(a.lines, c.lines);
  EXPECT_NE(a.truth_text, c.truth_text);
}

TEST(SimulatorTest, WritesAboutTheLinesAskedFor) {
  for (int64_t want : {5000, 60000}) {
    const Output out = RunSim(NewYearOptions(want));
    EXPECT_GT(out.summary.lines, want * 85 / 100) << want;
    EXPECT_LT(out.summary.lines, want * 115 / 100) << want;
    int64_t counted = 0;
    for (const auto& l : out.lines) counted += static_cast<int64_t>(l.size());
    EXPECT_EQ(counted, out.summary.lines);
    EXPECT_EQ(out.summary_json["summary"]["total_lines"].n, out.summary.lines);
  }
}

TEST(SimulatorTest, MessagesOptionCountsMessageScenarios) {
  SimulatorOptions o = NewYearOptions(0);
  o.messages = 300;
  const Output out = RunSim(o);
  // Every message scenario makes at least one instance; noise adds none.
  EXPECT_GE(out.summary.instances, 300);
  EXPECT_GT(out.summary.scenarios, 300);
}

std::string Show(const Endpoint& e) {
  return std::get<0>(e) + " " + std::get<1>(e) + " " + std::to_string(std::get<2>(e));
}

// Every line our hosts write is Postfix (or amavis/dovecot) the parser understands, and every
// instance the log shows is one the truth names, with the same queue ID and first time.
void ExpectParsedAndSameInstances(const Output& out, int year, absl::Duration zone) {
  const std::vector<ParsedHost> parsed = ParseAll(out, year, zone);
  int unparsed = 0;
  for (size_t h = 0; h < parsed.size(); ++h) {
    for (size_t i = 0; i < parsed[h].lines.size(); ++i) {
      const ParsedLine& p = parsed[h].lines[i];
      if (p.kind == core::Kind::kUnparsed || p.kind == core::Kind::kMalformed) {
        if (++unparsed <= 5) ADD_FAILURE() << "not understood: " << out.lines[h][i];
      }
    }
  }
  EXPECT_EQ(unparsed, 0);

  std::set<Endpoint> from_logs, from_truth;
  for (size_t h = 0; h < parsed.size(); ++h) {
    for (const LogInstance& in : parsed[h].instances) {
      from_logs.emplace(out.host_names[h], in.queue_id, in.first_us);
    }
  }
  for (const Json& j : out.truth) {
    if (j.Has("queue_id")) from_truth.insert(EndpointOf(j));
  }
  std::vector<Endpoint> only_logs, only_truth;
  std::set_difference(from_logs.begin(), from_logs.end(), from_truth.begin(), from_truth.end(),
                      std::back_inserter(only_logs));
  std::set_difference(from_truth.begin(), from_truth.end(), from_logs.begin(), from_logs.end(),
                      std::back_inserter(only_truth));
  EXPECT_EQ(only_logs.size(), 0u) << "in the logs only: " << Show(only_logs.front());
  EXPECT_EQ(only_truth.size(), 0u) << "in the truth only: " << Show(only_truth.front());
  EXPECT_GT(from_truth.size(), 1000u);
  EXPECT_EQ(static_cast<int64_t>(from_truth.size()), out.summary.instances);
}

TEST(SimulatorTest, ParserReadsEveryLineAndTheSameInstances) {
  ExpectParsedAndSameInstances(RunSim(NewYearOptions(40000)), 2024, absl::Hours(1));
}

// Three hosts, one with long queue IDs, zero-padded stamps and a clock behind; a zone west of
// UTC; a start inside the year.
TEST(SimulatorTest, ParserReadsEveryLineOfThreeHosts) {
  SimulatorOptions o = NewYearOptions(40000);
  o.start = absl::FromUnixSeconds(1718438400);  // 2024-06-15T08:00:00Z
  o.zone_offset = absl::Hours(-5);
  SimHostOptions out_host;
  out_host.name = "out";
  out_host.skew = absl::Seconds(-120);
  out_host.stamp = StampForm::kClassicZeroPadded;
  out_host.long_queue_ids = true;
  o.hosts.push_back(out_host);
  const Output out = RunSim(o);
  ASSERT_EQ(out.host_names.size(), 3u);
  EXPECT_GT(out.lines[2].size(), 1000u);
  EXPECT_TRUE(out.lines[1][0].find("-05:00 mx ") != std::string::npos) << out.lines[1][0];
  ExpectParsedAndSameInstances(out, 2024, absl::Hours(-5));
}

TEST(SimulatorTest, LinesAreInClockOrderPerHost) {
  const Output out = RunSim(NewYearOptions(20000));
  const std::vector<ParsedHost> parsed = ParseAll(out, 2024, absl::Hours(1));
  for (size_t h = 0; h < parsed.size(); ++h) {
    int64_t last = 0;
    for (const ParsedLine& p : parsed[h].lines) {
      ASSERT_GE(p.time_us, last) << out.host_names[h];
      last = p.time_us;
    }
  }
}

// Every "queued as X" handed to one of our hosts (or to amavis on the same host) and every
// bounce notice is a truth link, and every truth link is one of those: the two sets are equal.
TEST(SimulatorTest, LinksAreExactlyTheHandOffsInTheLogs) {
  SimulatorOptions o = NewYearOptions(40000);
  SimHostOptions out_host;
  out_host.name = "out";
  out_host.skew = absl::Seconds(-45);
  o.hosts.push_back(out_host);
  const Output out = RunSim(o);
  const std::vector<ParsedHost> parsed = ParseAll(out, 2024, absl::Hours(1));

  // (from, to host, to queue ID, kind): the "to" instance's first_us is checked separately.
  using LinkKey = std::tuple<Endpoint, std::string, std::string, std::string>;
  std::set<LinkKey> from_truth, from_logs;
  std::set<Endpoint> instances;
  for (const Json& j : out.truth) {
    if (j.Has("queue_id")) instances.insert(EndpointOf(j));
  }
  for (const Json& j : out.truth) {
    if (!j.Has("link")) continue;
    const Json& l = j["link"];
    from_truth.emplace(EndpointOf(l["from"]), l["to"]["host"].s, l["to"]["queue_id"].s,
                       l["kind"].s);
    EXPECT_TRUE(instances.count(EndpointOf(l["from"])));
    EXPECT_TRUE(instances.count(EndpointOf(l["to"])));
  }
  for (size_t h = 0; h < parsed.size(); ++h) {
    const std::string& host = out.host_names[h];
    for (const ParsedLine& p : parsed[h].lines) {
      if (p.instance < 0) continue;
      const LogInstance& in = parsed[h].instances[p.instance];
      const Endpoint from{host, in.queue_id, in.first_us};
      if (p.kind == core::Kind::kNotification) {
        from_logs.emplace(from, host, p.notice_id, "bounce");
        continue;
      }
      if (p.kind != core::Kind::kDelivery || p.status != "sent" || p.queued_as.empty()) continue;
      // LMTP's reply names Dovecot's session ("... <rcpt> SESSION Saved"), not a queue file,
      // though its relay= carries our host's name.
      if (p.program == "postfix/lmtp") continue;
      if (p.relay_host == "127.0.0.1") {
        from_logs.emplace(from, host, p.queued_as, "reinject");
        continue;
      }
      for (const std::string& name : out.host_names) {
        if (p.relay_host == name + ".example.test") {
          from_logs.emplace(from, name, p.queued_as, "relay");
        }
      }
    }
  }
  std::map<std::string, int> kinds;
  for (const LinkKey& k : from_truth) ++kinds[std::get<3>(k)];
  EXPECT_GT(kinds["reinject"], 500);
  EXPECT_GT(kinds["relay"], 500);
  EXPECT_GT(kinds["bounce"], 5);
  EXPECT_EQ(static_cast<int64_t>(from_truth.size()), out.summary.links);
  std::vector<LinkKey> only_logs, only_truth;
  std::set_difference(from_logs.begin(), from_logs.end(), from_truth.begin(), from_truth.end(),
                      std::back_inserter(only_logs));
  std::set_difference(from_truth.begin(), from_truth.end(), from_logs.begin(), from_logs.end(),
                      std::back_inserter(only_truth));
  EXPECT_EQ(only_logs.size(), 0u) << "in the logs only: " << Show(std::get<0>(only_logs.front()))
                                  << " -> " << std::get<1>(only_logs.front()) << " "
                                  << std::get<2>(only_logs.front());
  EXPECT_EQ(only_truth.size(), 0u)
      << "in the truth only: " << Show(std::get<0>(only_truth.front())) << " -> "
      << std::get<1>(only_truth.front()) << " " << std::get<2>(only_truth.front());
  // The outbound relay is in the chain: dmz hands internet mail to out.
  EXPECT_TRUE(std::any_of(from_truth.begin(), from_truth.end(),
                          [](const LinkKey& k) { return std::get<1>(k) == "out"; }));
}

TEST(SimulatorTest, ShortQueueIdsAreReusedAfterRemoval) {
  const Output out = RunSim(NewYearOptions(40000));
  EXPECT_GT(out.summary.reused_queue_ids, 5);
  const std::vector<ParsedHost> parsed = ParseAll(out, 2024, absl::Hours(1));
  int reused = 0;
  for (size_t h = 0; h < parsed.size(); ++h) {
    std::map<std::string, int> seen;
    for (const LogInstance& in : parsed[h].instances) reused += seen[in.queue_id]++ > 0;
  }
  // ParseHost opens a new instance only after "removed": had two instances with one ID
  // overlapped, it would have merged them and found fewer reuses than the truth names.
  EXPECT_EQ(reused, out.summary.reused_queue_ids);
  int flagged = 0;
  for (const Json& j : out.truth) flagged += j.Has("reused") && j["reused"].b;
  EXPECT_EQ(flagged, reused);
}

TEST(SimulatorTest, CrossesMidnightAndNewYear) {
  const Output out = RunSim(NewYearOptions(20000));
  ASSERT_EQ(out.host_names[0], "dmz");
  auto any = [](const std::vector<std::string>& lines, const std::string& prefix) {
    return std::any_of(lines.begin(), lines.end(),
                       [&](const std::string& l) { return l.rfind(prefix, 0) == 0; });
  };
  EXPECT_TRUE(any(out.lines[0], "Dec 31 23:"));
  EXPECT_TRUE(any(out.lines[0], "Jan  1 00:"));  // syslog pads the day with a space
  EXPECT_FALSE(any(out.lines[0], "Jan 01"));
  EXPECT_TRUE(any(out.lines[1], "2024-12-31T23:"));
  EXPECT_TRUE(any(out.lines[1], "2025-01-01T02:"));
  EXPECT_TRUE(out.lines[1][0].find("+01:00 mx ") != std::string::npos) << out.lines[1][0];

  // Read with year 2024, the classic host's January lines land in 2025 and nothing falls
  // outside the span (plus mx's skew).
  const std::vector<ParsedHost> parsed = ParseAll(out, 2024, absl::Hours(1));
  const int64_t start = 1735682400LL * 1000000, end = start + 4 * 3600LL * 1000000;
  for (const ParsedHost& ph : parsed) {
    EXPECT_GE(ph.lines.front().time_us, start);
    EXPECT_LE(ph.lines.back().time_us, end + 91 * 1000000LL);
    EXPECT_GT(ph.lines.back().time_us, 1735689600LL * 1000000);  // 2025-01-01T00:00:00Z
  }
}

TEST(SimulatorTest, CrossesMidnightWithZeroPaddedStamps) {
  SimulatorOptions o = NewYearOptions(8000);
  o.start = absl::FromUnixSeconds(1719784800);  // 2024-06-30T22:00:00Z
  o.duration = absl::Hours(3);
  o.zone_offset = absl::ZeroDuration();
  o.hosts[0].stamp = StampForm::kClassicZeroPadded;
  const Output out = RunSim(o);
  auto any = [](const std::vector<std::string>& lines, const std::string& prefix) {
    return std::any_of(lines.begin(), lines.end(),
                       [&](const std::string& l) { return l.rfind(prefix, 0) == 0; });
  };
  EXPECT_TRUE(any(out.lines[0], "Jun 30 23:"));
  EXPECT_TRUE(any(out.lines[0], "Jul 01 00:"));
  EXPECT_TRUE(any(out.lines[1], "2024-07-01T00:"));
  EXPECT_TRUE(out.lines[1][0].find("+00:00 mx ") != std::string::npos) << out.lines[1][0];
}

// mx's clock runs 90 s ahead: what it writes about a message dmz just handed over is 90 s
// later than dmz's own lines, and the truth's first_us says so.
TEST(SimulatorTest, SkewShowsInWrittenTimes) {
  const Output out = RunSim(NewYearOptions(20000));
  std::vector<int64_t> gaps;
  for (const Json& j : out.truth) {
    if (!j.Has("link")) continue;
    const Json& l = j["link"];
    if (l["kind"].s == "relay" && l["from"]["host"].s == "dmz" && l["to"]["host"].s == "mx") {
      gaps.push_back(l["to"]["first_us"].n - l["from"]["first_us"].n);
    }
  }
  ASSERT_GT(gaps.size(), 50u);
  std::sort(gaps.begin(), gaps.end());
  const int64_t median = gaps[gaps.size() / 2];
  EXPECT_GT(median, 88 * 1000000LL);
  EXPECT_LT(median, 93 * 1000000LL);
}

TEST(SimulatorTest, LongQueueIdsOnOneHost) {
  SimulatorOptions o = NewYearOptions(10000);
  o.hosts[1].long_queue_ids = true;
  const Output out = RunSim(o);
  int long_ids = 0, short_ids = 0;
  for (const Json& j : out.truth) {
    if (!j.Has("queue_id")) continue;
    const core::QueueIdForm form = core::ClassifyQueueId(j["queue_id"].s);
    if (j["host"].s == "mx") {
      EXPECT_EQ(form, core::QueueIdForm::kLong) << j["queue_id"].s;
      ++long_ids;
    } else {
      EXPECT_EQ(form, core::QueueIdForm::kShort) << j["queue_id"].s;
      ++short_ids;
    }
  }
  EXPECT_GT(long_ids, 100);
  EXPECT_GT(short_ids, 100);
}

// Hand-offs to foreign MTAs are externals, never links, in every reply form; the parser reads
// the same ID from each; some foreign Postfix IDs equal IDs of ours.
TEST(SimulatorTest, ForeignRepliesAreExternalsInEveryForm) {
  const Output out = RunSim(NewYearOptions(60000));
  const std::vector<ParsedHost> parsed = ParseAll(out, 2024, absl::Hours(1));
  std::map<std::string, core::NextHopForm> want = {{"postfix", core::NextHopForm::kPostfix},
                                                   {"exim", core::NextHopForm::kExim},
                                                   {"gmail", core::NextHopForm::kGmail},
                                                   {"microsoft", core::NextHopForm::kMicrosoft},
                                                   {"sendmail", core::NextHopForm::kSendmail}};
  // (host, queue ID, first_us, queued_as) -> form, from the logs.
  std::map<std::tuple<std::string, std::string, int64_t, std::string>, core::NextHopForm> seen;
  for (size_t h = 0; h < parsed.size(); ++h) {
    for (const ParsedLine& p : parsed[h].lines) {
      if (p.kind != core::Kind::kDelivery || p.status != "sent" || p.queued_as.empty()) continue;
      const LogInstance& in = parsed[h].instances[p.instance];
      seen[{out.host_names[h], in.queue_id, in.first_us, p.queued_as}] = p.form;
    }
  }
  std::set<std::string> ours;
  for (const Json& j : out.truth) {
    if (j.Has("queue_id")) ours.insert(j["queue_id"].s);
  }
  std::map<std::string, int> forms;
  int collisions = 0;
  for (const Json& j : out.truth) {
    if (!j.Has("external")) continue;
    const Json& e = j["external"];
    const auto [host, qid, first] = EndpointOf(e["from"]);
    auto it = seen.find({host, qid, first, e["queued_as"].s});
    ASSERT_NE(it, seen.end()) << qid << " " << e["queued_as"].s;
    ASSERT_TRUE(want.count(e["form"].s)) << e["form"].s;
    EXPECT_EQ(it->second, want[e["form"].s]) << e["form"].s << " " << e["queued_as"].s;
    ++forms[e["form"].s];
    if (e["collides"].b) {
      ++collisions;
      EXPECT_TRUE(ours.count(e["queued_as"].s)) << e["queued_as"].s;
    }
  }
  for (const auto& [name, form] : want) EXPECT_GT(forms[name], 5) << name;
  EXPECT_GT(collisions, 5);
  EXPECT_EQ(collisions, out.summary.foreign_collisions);
}

// The fates: bounced at mx's LMTP, deferred then delivered, expired and returned, rejected at
// RCPT, NOQUEUE rejects and SASL noise all occur in an ordinary run.
TEST(SimulatorTest, EveryFateOccurs) {
  SimulatorOptions o = NewYearOptions(60000);
  o.expire_rate = 0.02;
  const Output out = RunSim(o);
  std::map<std::string, int> statuses;
  for (const Json& j : out.truth) {
    if (!j.Has("recipients")) continue;
    for (const Json& r : j["recipients"].items) ++statuses[r["status"].s];
  }
  for (const char* s : {"sent", "bounced", "deferred", "expired", "rejected"}) {
    EXPECT_GT(statuses[s], 0) << s;
  }
  const std::vector<ParsedHost> parsed = ParseAll(out, 2024, absl::Hours(1));
  std::map<core::Kind, int> kinds;
  int lmtp_bounces = 0, deferred_then_sent = 0;
  for (const ParsedHost& ph : parsed) {
    std::map<std::pair<int, std::string>, int> deferrals;  // (instance, line rest) -> count
    for (const ParsedLine& p : ph.lines) {
      ++kinds[p.kind];
      if (p.kind != core::Kind::kDelivery) continue;
      if (p.program == "postfix/lmtp" && p.status == "bounced") ++lmtp_bounces;
      const size_t to = p.message.find("to=<");
      const std::string rcpt = p.message.substr(to, p.message.find('>', to) - to);
      if (p.status == "deferred") ++deferrals[{p.instance, rcpt}];
      if (p.status == "sent" && deferrals[{p.instance, rcpt}] > 0) ++deferred_then_sent;
    }
  }
  EXPECT_GT(lmtp_bounces, 0);
  EXPECT_GT(deferred_then_sent, 0);
  EXPECT_GT(kinds[core::Kind::kExpired], 0);
  EXPECT_EQ(kinds[core::Kind::kExpired], out.summary.expired);
  EXPECT_GT(kinds[core::Kind::kReject], 0);
  EXPECT_GT(kinds[core::Kind::kSaslFailed], 0);
  EXPECT_GT(kinds[core::Kind::kPickup], 0);
  EXPECT_GT(kinds[core::Kind::kPostscreenPass], 0);
  EXPECT_GT(kinds[core::Kind::kAmavis], 0);
  EXPECT_GT(kinds[core::Kind::kDovecotDelivery], 0);
}

// Mail cleanup refuses (header/body checks, milters) and expiries logged after "removed":
// off by default; when asked for, in the logs as Postfix writes them, read by the parser, and
// in the truth (a disposition, the recipient's status; the late expiry on its own message).
TEST(SimulatorTest, CleanupRefusalsAndLateExpiries) {
  SimulatorOptions o = NewYearOptions(40000);
  const Output plain = RunSim(o);
  EXPECT_EQ(plain.summary.cleanup_refusals, 0);
  EXPECT_FALSE(plain.summary_json["summary"].Has("cleanup_refusals"));
  o.mix.content_check = 8;
  o.expire_rate = 0.03;
  o.expiry_after_removed_rate = 0.5;
  const Output out = RunSim(o);
  ExpectParsedAndSameInstances(out, 2024, absl::Hours(1));
  EXPECT_GT(out.summary.cleanup_refusals, 20);
  EXPECT_EQ(out.summary_json["summary"]["cleanup_refusals"].n, out.summary.cleanup_refusals);
  std::map<std::string, int> dispositions;
  for (const Json& j : out.truth) {
    if (!j.Has("disposition")) continue;
    ++dispositions[j["disposition"].s];
    ASSERT_EQ(j["recipients"].items.size(), 1u);
    EXPECT_EQ(j["recipients"].items[0]["status"].s, j["disposition"].s);
  }
  EXPECT_GT(dispositions["rejected"], 0);
  EXPECT_GT(dispositions["discarded"], 0);
  EXPECT_EQ(dispositions["rejected"] + dispositions["discarded"], out.summary.cleanup_refusals);
  // Late expiries, and the queue ID taken by the next message right after.
  const std::vector<ParsedHost> parsed = ParseAll(out, 2024, absl::Hours(1));
  int late = 0, reused = 0;
  for (const ParsedHost& ph : parsed) {
    std::map<std::string, core::Kind> last;
    std::set<std::string> after_late;
    for (const ParsedLine& p : ph.lines) {
      if (p.instance < 0) continue;
      auto it = last.find(p.queue_id);
      if (p.kind == core::Kind::kExpired && it != last.end() &&
          it->second == core::Kind::kRemoved) {
        ++late;
        after_late.insert(p.queue_id);
      } else if ((p.kind == core::Kind::kClient || p.kind == core::Kind::kPickup) &&
                 after_late.erase(p.queue_id)) {
        ++reused;
      }
      last[p.queue_id] = p.kind;
    }
  }
  EXPECT_GT(late, 0);
  EXPECT_GT(reused, 0);
}

TEST(SimulatorTest, RejectsBadOptions) {
  MemorySink sink;
  SimulatorOptions o = NewYearOptions(1000);
  o.hosts.pop_back();  // no mx
  EXPECT_FALSE(Simulate(o, &sink).ok());
  o = NewYearOptions(1000);
  o.hosts[0].name = "relay";
  EXPECT_FALSE(Simulate(o, &sink).ok());
  o = NewYearOptions(1000);
  o.duration = absl::ZeroDuration();
  EXPECT_FALSE(Simulate(o, &sink).ok());
  EXPECT_TRUE(sink.lines.empty());
}

// loopback_hosts: our hosts relay to each other on 127.0.0.x and never on their private
// addresses, partner.test's MX (a foreign Postfix) answers on 127.0.0.25 and stays an external,
// and some of amavis's replies are a plain "queued as" while the truth still calls them
// re-injections. Without the option, none of it.
TEST(SimulatorTest, LoopbackHostsRelayOnLoopbackAddresses) {
  auto count = [](const Output& out, const std::vector<std::string>& words) {
    int n = 0;
    for (const auto& host : out.lines) {
      for (const std::string& line : host) {
        bool all = true;
        for (const std::string& w : words) all = all && line.find(w) != std::string::npos;
        n += all;
      }
    }
    return n;
  };
  SimulatorOptions o = NewYearOptions(30000);
  o.loopback_hosts = true;
  const Output out = RunSim(o);
  EXPECT_GT(count(out, {"relay=mx.example.test[127.0.0.3]:25", "queued as"}), 0);
  EXPECT_GT(count(out, {"relay=dmz.example.test[127.0.0.2]:25", "queued as"}), 0);
  EXPECT_EQ(count(out, {"[10.1.0."}), 0);
  EXPECT_GT(count(out, {"relay=mx.partner.test[127.0.0.25]:25", "status=sent", "queued as"}), 0);
  EXPECT_GT(count(out, {"relay=127.0.0.1[127.0.0.1]:10024", "status=sent (250 2.0.0 Ok: queued"}),
            0);
  EXPECT_GT(count(out, {"relay=127.0.0.1[127.0.0.1]:10024", "from MTA(smtp:"}), 0);
  int loopback_externals = 0;
  for (const Json& j : out.truth) {
    // The truth names the relay without its address: partner.test's MX is the one on loopback.
    if (j.Has("external") && j["external"]["relay"].s == "mx.partner.test") {
      ++loopback_externals;
    }
  }
  EXPECT_GT(loopback_externals, 0);

  const Output plain = RunSim(NewYearOptions(30000));
  EXPECT_EQ(count(plain, {"127.0.0.2"}), 0);
  EXPECT_EQ(count(plain, {"127.0.0.25"}), 0);
  EXPECT_EQ(count(plain, {"relay=127.0.0.1[127.0.0.1]:10024", "status=sent (250 2.0.0 Ok: queued"}),
            0);
}

// ---- files beside the logs (ExtraFileOptions) ---------------------------------------------

std::string ReadBytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::vector<std::string> SplitLines(const std::string& bytes) {
  std::vector<std::string> lines;
  size_t at = 0;
  while (at < bytes.size()) {
    const size_t nl = bytes.find('\n', at);
    if (nl == std::string::npos) {
      lines.push_back(bytes.substr(at));  // a last line without '\n': no file here has one
      break;
    }
    lines.push_back(bytes.substr(at, nl - at));
    at = nl + 1;
  }
  return lines;
}

// What the importer takes for a maillog line (store/importer.cc, HasSyslogHeader): a
// stamp followed by a host or by a program with a pid.
bool LooksLikeMaillogLine(std::string_view line) {
  core::SyslogHeader header;
  return core::ParseSyslogHeader(line, &header) && (!header.host.empty() || header.pid >= 0);
}

// A directory under the system's temporary one, removed at the end of the test.
class TempDir {
 public:
  explicit TempDir(const std::string& name)
      : path_(std::filesystem::temp_directory_path() / (name + "_" + std::to_string(getpid()))) {
    std::filesystem::remove_all(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// Extracts and syslog copies are slices of their host's log, byte for byte, where the summary
// says; dovecot.log and README.txt are no maillogs; and none of it changes the logs or the
// truth, which an importer's overlap check relies on (the extra files add no event).
TEST(SimulatorTest, ExtraFilesAreSlicesOfTheLogsAndLeaveTheTruthAlone) {
  TempDir tmp("maillens_simulator_extra");
  SimulatorOptions o = NewYearOptions(20000);
  SimHostOptions out;
  out.name = "out";
  out.stamp = StampForm::kClassicZeroPadded;
  o.hosts.push_back(out);
  absl::StatusOr<SimulatorSummary> plain = SimulateToDirectory(o, (tmp.path() / "plain").string());
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_TRUE(plain->extra_files.empty());
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(tmp.path() / "plain"),
                          std::filesystem::directory_iterator()),
            4);  // three logs and the truth

  o.extra_files.extracts = true;
  o.extra_files.syslog_copies = true;
  o.extra_files.non_maillogs = true;
  o.extra_files.dovecot_lines = 1500;
  const std::filesystem::path dir = tmp.path() / "extra";
  absl::StatusOr<SimulatorSummary> extra = SimulateToDirectory(o, dir.string());
  ASSERT_TRUE(extra.ok()) << extra.status();

  for (const char* name : {"dmz.log", "mx.log", "out.log", "truth.jsonl"}) {
    EXPECT_EQ(ReadBytes(dir / name), ReadBytes(tmp.path() / "plain" / name)) << name;
  }
  std::vector<std::string> names;
  for (const ExtraFile& f : extra->extra_files) names.push_back(f.name);
  EXPECT_EQ(names,
            (std::vector<std::string>{"dmz.extract.log", "dmz.syslog-copy.log", "mx.extract.log",
                                      "mx.syslog-copy.log", "out.extract.log",
                                      "out.syslog-copy.log", "dovecot.log", "README.txt"}));

  std::map<std::string, int64_t> log_lines(extra->lines_per_host.begin(),
                                           extra->lines_per_host.end());
  for (const ExtraFile& f : extra->extra_files) {
    const std::vector<std::string> lines = SplitLines(ReadBytes(dir / f.name));
    EXPECT_EQ(static_cast<int64_t>(lines.size()), f.lines) << f.name;
    if (f.host.empty()) {
      // Not a maillog: the importer's check must see no line of one.
      EXPECT_EQ(std::count_if(lines.begin(), lines.end(), LooksLikeMaillogLine), 0) << f.name;
      continue;
    }
    const std::vector<std::string> log = SplitLines(ReadBytes(dir / (f.host + ".log")));
    ASSERT_EQ(static_cast<int64_t>(log.size()), log_lines[f.host]) << f.host;
    const int64_t n = log_lines[f.host];
    const bool copy = f.name.find(".syslog-copy.") != std::string::npos;
    const double from = copy ? o.extra_files.copy_from : o.extra_files.extract_from;
    const double to = copy ? 1.0 : o.extra_files.extract_to;
    // Where the options put it: the fractions of the line count, rounded down.
    EXPECT_EQ(f.first_line, static_cast<int64_t>(std::floor(from * static_cast<double>(n))))
        << f.name;
    EXPECT_EQ(f.first_line + f.lines, static_cast<int64_t>(std::floor(to * static_cast<double>(n))))
        << f.name;
    ASSERT_GT(f.first_line, 0) << f.name;  // starts past the log's first line
    ASSERT_LE(f.first_line + f.lines, n) << f.name;
    const std::vector<std::string> slice(log.begin() + f.first_line,
                                         log.begin() + f.first_line + f.lines);
    EXPECT_TRUE(lines == slice) << f.name << " is not lines " << f.first_line + 1 << "-"
                                << f.first_line + f.lines << " of " << f.host << ".log";
  }

  // dovecot.log: about the lines asked for, over the run's span in mx's local time (zone
  // +01:00, skew +90 s), in time order.
  const std::vector<std::string> dovecot = SplitLines(ReadBytes(dir / "dovecot.log"));
  EXPECT_GT(dovecot.size(), 1500u * 85 / 100);
  EXPECT_LT(dovecot.size(), 1500u * 115 / 100);
  const absl::TimeZone local = absl::FixedTimeZone(3600);
  absl::Time last = absl::InfinitePast();
  for (const std::string& line : dovecot) {
    absl::Time t;
    std::string error;
    ASSERT_TRUE(absl::ParseTime("%Y-%m-%d %H:%M:%S", line.substr(0, 19), local, &t, &error))
        << line << ": " << error;
    EXPECT_GE(t, last) << line;
    EXPECT_GE(t, o.start + absl::Seconds(90) - absl::Seconds(1)) << line;
    EXPECT_LT(t, o.start + o.duration + absl::Seconds(90)) << line;
    last = t;
  }

  // Same options, same bytes, the extra files too.
  const std::filesystem::path again = tmp.path() / "again";
  ASSERT_TRUE(SimulateToDirectory(o, again.string()).ok());
  for (const ExtraFile& f : extra->extra_files) {
    EXPECT_EQ(ReadBytes(again / f.name), ReadBytes(dir / f.name)) << f.name;
  }
}

TEST(SimulatorTest, RejectsBadExtraFileOptions) {
  SimulatorOptions o = NewYearOptions(1000);
  o.extra_files.extracts = true;
  o.extra_files.syslog_copies = true;
  o.extra_files.non_maillogs = true;
  EXPECT_TRUE(ValidateSimulatorOptions(o).ok());
  SimulatorOptions bad = o;
  bad.extra_files.extract_from = 0.6;
  bad.extra_files.extract_to = 0.6;
  EXPECT_FALSE(ValidateSimulatorOptions(bad).ok());
  bad = o;
  bad.extra_files.extract_to = 1.5;
  EXPECT_FALSE(ValidateSimulatorOptions(bad).ok());
  bad = o;
  bad.extra_files.extract_from = std::nan("");
  EXPECT_FALSE(ValidateSimulatorOptions(bad).ok());
  bad = o;
  bad.extra_files.copy_from = 1;
  EXPECT_FALSE(ValidateSimulatorOptions(bad).ok());
  bad = o;
  bad.extra_files.dovecot_lines = 0;
  EXPECT_FALSE(ValidateSimulatorOptions(bad).ok());
  // Only what is asked for is checked: a range nobody uses is no error.
  bad = o;
  bad.extra_files.extracts = false;
  bad.extra_files.extract_to = 1.5;
  EXPECT_TRUE(ValidateSimulatorOptions(bad).ok());
}

}  // namespace
}  // namespace maillens::tools
