// Correlation accuracy against the simulator's ground truth: a three-host site with content
// filtering, queue-ID reuse, foreign IDs that collide with ours, clock skew, both stamp forms,
// and a midnight and new-year crossing, once on private addresses and once on loopback
// addresses of one machine, once with cleanup refusals and late expiries; imported host by
// host in two different orders; and once with an extract and a syslog server's copy of each
// log and two files that are no maillogs, in both orders of extract and log. Prints precision
// and recall of hop links and the share of recipients whose final status is right, and asserts
// the targets; every import also asserts that the store holds each line of the logs exactly
// once, under the site's hosts only.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "store/importer.h"
#include "store/store.h"
#include "tools/simulator.h"

namespace maillens {
namespace {

namespace fs = std::filesystem;
using google::protobuf::Struct;
using google::protobuf::Value;

// (host, queue ID, first_us): an instance as both sides can name it.
using InstanceKey = std::tuple<std::string, std::string, int64_t>;
using LinkKey = std::tuple<InstanceKey, InstanceKey, std::string>;

struct Truth {
  std::set<InstanceKey> instances;
  std::set<LinkKey> links;
  std::map<InstanceKey, std::map<std::string, std::string>> statuses;  // rcpt -> status
  // Messages cleanup refused: "rejected" or "discarded" (header/body checks, milters).
  std::map<InstanceKey, std::string> dispositions;
};

InstanceKey KeyOf(const google::protobuf::Struct& s) {
  const auto& f = s.fields();
  return {f.at("host").string_value(), f.at("queue_id").string_value(),
          static_cast<int64_t>(f.at("first_us").number_value())};
}

Truth ReadTruth(const std::string& path) {
  Truth truth;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    Struct s;
    if (!google::protobuf::util::JsonStringToMessage(line, &s).ok()) continue;
    const auto& f = s.fields();
    if (f.count("link")) {
      const auto& l = f.at("link").struct_value().fields();
      truth.links.insert({KeyOf(l.at("from").struct_value()), KeyOf(l.at("to").struct_value()),
                          l.at("kind").string_value()});
    } else if (f.count("queue_id")) {
      InstanceKey key = KeyOf(s);
      truth.instances.insert(key);
      if (f.count("disposition")) truth.dispositions[key] = f.at("disposition").string_value();
      for (const Value& r : f.at("recipients").list_value().values()) {
        const auto& rf = r.struct_value().fields();
        truth.statuses[key][rf.at("to").string_value()] = rf.at("status").string_value();
      }
    }
  }
  return truth;
}

struct Measured {
  double precision = 0, recall = 0;
  size_t links_found = 0, links_true = 0, links_correct = 0;
  size_t bounces_true = 0, bounces_found = 0;
  size_t statuses_checked = 0, statuses_right = 0;
  // Refused in cleanup: final (ended), with the truth's disposition and sender; and no other
  // instance said to be refused.
  size_t refusals_true = 0, refusals_right = 0, refusals_extra = 0;
  std::vector<std::string> examples;  // a few mistakes, for the log
};

Measured Compare(store::Store* store, const Truth& truth) {
  Measured m;
  auto traces = store->TracesIn(INT64_MIN, INT64_MAX);
  EXPECT_TRUE(traces.ok()) << traces.status();
  std::set<LinkKey> found;
  std::map<InstanceKey, std::map<std::string, std::string>> statuses;
  std::map<InstanceKey, const store::MessageInfo*> messages;
  for (const store::Trace& t : *traces) {
    std::map<int64_t, InstanceKey> key;
    for (const auto& msg : t.messages) {
      key[msg.id] = {msg.host, msg.queue_id, msg.first_us};
      messages[key[msg.id]] = &msg;
    }
    for (const auto& l : t.links) found.insert({key[l.from], key[l.to], l.kind});
    for (const auto& r : t.recipients) statuses[key[r.message]][r.recipient] = r.status;
  }
  m.links_found = found.size();
  m.links_true = truth.links.size();
  for (const LinkKey& l : found) {
    if (truth.links.count(l)) {
      ++m.links_correct;
    } else if (m.examples.size() < 10) {
      m.examples.push_back("extra link " + std::get<0>(std::get<0>(l)) + ":" +
                           std::get<1>(std::get<0>(l)) + " -> " + std::get<0>(std::get<1>(l)) +
                           ":" + std::get<1>(std::get<1>(l)) + " " + std::get<2>(l));
    }
  }
  for (const LinkKey& l : truth.links) {
    if (std::get<2>(l) == "bounce") {
      ++m.bounces_true;
      m.bounces_found += found.count(l);
    }
    if (!found.count(l) && m.examples.size() < 20) {
      m.examples.push_back("missed link " + std::get<0>(std::get<0>(l)) + ":" +
                           std::get<1>(std::get<0>(l)) + " -> " + std::get<0>(std::get<1>(l)) +
                           ":" + std::get<1>(std::get<1>(l)) + " " + std::get<2>(l));
    }
  }
  m.precision = m.links_found ? static_cast<double>(m.links_correct) / m.links_found : 1;
  m.recall = m.links_true ? static_cast<double>(m.links_correct) / m.links_true : 1;
  for (const auto& [instance, rcpts] : truth.statuses) {
    for (const auto& [rcpt, status] : rcpts) {
      if (status == "queued") continue;  // no attempt logged yet: nothing to be right about
      ++m.statuses_checked;
      auto it = statuses.find(instance);
      std::string got;
      if (it != statuses.end() && it->second.count(rcpt)) got = it->second.at(rcpt);
      if (got == status) {
        ++m.statuses_right;
      } else if (m.examples.size() < 30) {
        m.examples.push_back("status of " + rcpt + " at " + std::get<0>(instance) + ":" +
                             std::get<1>(instance) + ": want " + status + ", got '" + got + "'");
      }
    }
  }
  for (const auto& [instance, disposition] : truth.dispositions) {
    ++m.refusals_true;
    auto it = messages.find(instance);
    const store::MessageInfo* msg = it == messages.end() ? nullptr : it->second;
    if (msg != nullptr && msg->disposition == disposition && msg->end_us.has_value() &&
        msg->has_sender) {
      ++m.refusals_right;
    } else if (m.examples.size() < 40) {
      m.examples.push_back("refusal at " + std::get<0>(instance) + ":" + std::get<1>(instance) +
                           ": want " + disposition + ", ended, with its sender; got '" +
                           (msg ? msg->disposition : "no instance") + "'" +
                           (msg && !msg->end_us ? ", not ended" : "") +
                           (msg && !msg->has_sender ? ", no sender" : ""));
    }
  }
  for (const auto& [instance, msg] : messages) {
    if ((msg->disposition == "rejected" || msg->disposition == "discarded") &&
        !truth.dispositions.count(instance)) {
      ++m.refusals_extra;
    }
  }
  return m;
}

void Print(const char* order, const Measured& m) {
  std::printf(
      "%s: links %zu true, %zu found, %zu correct: precision %.4f%%, recall %.4f%%; bounces "
      "%zu/%zu linked; recipient status right %zu/%zu (%.4f%%)\n",
      order, m.links_true, m.links_found, m.links_correct, 100 * m.precision, 100 * m.recall,
      m.bounces_found, m.bounces_true, m.statuses_right, m.statuses_checked,
      m.statuses_checked ? 100.0 * m.statuses_right / m.statuses_checked : 100.0);
  if (m.refusals_true > 0 || m.refusals_extra > 0) {
    std::printf("%s: refused in cleanup %zu, right (final, disposition, sender) %zu, extra %zu\n",
                order, m.refusals_true, m.refusals_right, m.refusals_extra);
  }
  for (const std::string& e : m.examples) std::printf("  %s\n", e.c_str());
}

void PrintSummary(const tools::SimulatorSummary& summary) {
  std::printf(
      "simulated %lld lines: %lld instances, %lld links (%lld bounce), %lld reused IDs, "
      "%lld foreign collisions\n",
      static_cast<long long>(summary.lines), static_cast<long long>(summary.instances),
      static_cast<long long>(summary.links), static_cast<long long>(summary.bounce_links),
      static_cast<long long>(summary.reused_queue_ids),
      static_cast<long long>(summary.foreign_collisions));
}

// The site every case simulates: a DMZ relay with classic stamps, a mailbox server with RFC 3339
// stamps whose clock runs 90 s ahead, an outbound relay with zero-padded stamps, long queue IDs
// and a clock 75 s behind; four hours in zone +01:00, across midnight and the new year.
tools::SimulatorOptions ThreeHostSite(uint64_t seed, int64_t lines) {
  tools::SimulatorOptions sim;
  sim.seed = seed;
  sim.target_lines = lines;
  sim.start = absl::FromUnixSeconds(1735682400);  // 2024-12-31T22:00:00Z
  sim.duration = absl::Hours(4);
  sim.zone_offset = absl::Hours(1);
  sim.hosts = {{"dmz", absl::ZeroDuration(), tools::StampForm::kClassic, false},
               {"mx", absl::Seconds(90), tools::StampForm::kRfc3339, false},
               {"out", absl::Seconds(-75), tools::StampForm::kClassicZeroPadded, true}};
  return sim;
}

// What one import run gave, beside the accuracy.
struct RunResult {
  Measured measured;
  store::ImportStats total;  // summed over the files imported (not over the refused)
  uint64_t extra_lines = 0;  // lines of the extracts and syslog copies imported
  std::map<std::string, uint64_t> host_messages;  // Store::Hosts: instances made of the lines
};

// Each case: a simulated site in a directory of its own, removed after the case.
class CorrelationAccuracyTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  // Simulates `sim` into a fresh directory and reads its truth. Every file gets the end of the
  // span as its modification time, as the hosts' last writes would have left it: the importer
  // infers the year of classic stamps from it (as `maillens import` without --year does), which
  // is right for every file. A fixed ImportOptions::year is the year of a file's first stamp:
  // wrong for a slice of these logs that starts after New Year, whose lines would then be put a
  // year early and no longer be seen as the log's own.
  void SimulateSite(const std::string& name, const tools::SimulatorOptions& sim) {
    dir_ =
        fs::temp_directory_path() / ("maillens_accuracy_" + name + "_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    logs_ = dir_ / "logs";
    auto summary = tools::SimulateToDirectory(sim, logs_.string());
    ASSERT_TRUE(summary.ok()) << summary.status();
    summary_ = *std::move(summary);
    PrintSummary(summary_);
    const time_t end = static_cast<time_t>(absl::ToUnixSeconds(sim.start + sim.duration));
    for (const fs::directory_entry& file : fs::directory_iterator(logs_)) {
      const struct timespec times[2] = {{end, 0}, {end, 0}};
      ASSERT_EQ(utimensat(AT_FDCWD, file.path().c_str(), times, 0), 0) << file.path();
    }
    truth_ = ReadTruth((logs_ / "truth.jsonl").string());
    ASSERT_EQ(truth_.links.size(), static_cast<size_t>(summary_.links));
  }

  // Imports `files` (names in the site's directory) in that order into a fresh store, as
  // `maillens import` does (check_maillog), and asserts what holds for any choice of the site's
  // files: each maillog imports without an unparsed line; each file that is not one
  // (summary_.extra_files without a host) is refused, naming it, and stores nothing; the store
  // then holds every line of the logs exactly once, under the site's hosts only (an extract or
  // a copy adds nothing, whichever came first). Then measures the traces against the truth into
  // result->measured (ExpectTargets asserts the targets on them).
  void ImportAndCompare(const std::string& name, const std::vector<std::string>& files,
                        RunResult* result) {
    std::map<std::string, const tools::ExtraFile*> extra;
    for (const tools::ExtraFile& f : summary_.extra_files) extra[f.name] = &f;
    const fs::path data = dir_ / "data";
    fs::remove_all(data);
    store::StoreOptions store_options;
    store_options.dir = data.string();
    store_options.durable = false;
    store_options.correlate_behind = true;  // as maillens import
    store_options.behind_depth = 4;
    auto store = store::Store::Open(store_options);
    ASSERT_TRUE(store.ok()) << store.status();
    for (const std::string& file : files) {
      const std::string path = (logs_ / file).string();
      store::ImportOptions import;
      import.zone = absl::FixedTimeZone(3600);
      import.check_maillog = true;
      import.data_dir = data.string();
      const store::ImportOutcome outcome = store::Import(store->get(), path, import);
      auto it = extra.find(file);
      if (it != extra.end() && it->second->host.empty()) {
        EXPECT_TRUE(outcome.refused) << name << ": " << file << ": " << outcome.status;
        EXPECT_EQ(outcome.status.code(), absl::StatusCode::kFailedPrecondition) << file;
        EXPECT_NE(outcome.status.message().find(path), std::string::npos) << outcome.status;
        EXPECT_EQ(outcome.stats.stored, 0u) << file;
        continue;
      }
      ASSERT_TRUE(outcome.status.ok()) << name << ": " << file << ": " << outcome.status;
      EXPECT_EQ(outcome.stats.unparsed, 0u) << file;
      result->total.read += outcome.stats.read;
      result->total.stored += outcome.stats.stored;
      result->total.duplicates += outcome.stats.duplicates;
      result->total.overlapping += outcome.stats.overlapping;
      if (it != extra.end()) result->extra_lines += static_cast<uint64_t>(it->second->lines);
    }

    // Every line once, whatever else was imported and in which order. Each line of an extract
    // or copy is found already present once: in the log's import when it came first, in its
    // own when the log did.
    const uint64_t lines = static_cast<uint64_t>(summary_.lines);
    std::printf(
        "%s: read %llu lines, stored %llu, already present %llu (%llu of extracts and "
        "copies)\n",
        name.c_str(), static_cast<unsigned long long>(result->total.read),
        static_cast<unsigned long long>(result->total.stored),
        static_cast<unsigned long long>(result->total.duplicates),
        static_cast<unsigned long long>(result->extra_lines));
    EXPECT_EQ(result->total.read, lines + result->extra_lines) << name;
    EXPECT_EQ(result->total.stored, lines) << name;
    EXPECT_EQ(result->total.overlapping, result->extra_lines) << name;
    EXPECT_EQ(result->total.duplicates, result->total.overlapping) << name;
    auto counted = (*store)->CountLines();
    ASSERT_TRUE(counted.ok()) << counted.status();
    EXPECT_EQ(*counted, lines) << name;
    // No host but the site's (a refused file made none), each with its log's lines.
    std::map<std::string, uint64_t> want_lines, host_lines;
    for (const auto& [host, n] : summary_.lines_per_host) want_lines[host] = n;
    auto hosts = (*store)->Hosts();
    ASSERT_TRUE(hosts.ok()) << hosts.status();
    for (const auto& h : *hosts) {
      host_lines[h.name] = h.lines;
      result->host_messages[h.name] = h.messages;
    }
    EXPECT_EQ(host_lines, want_lines) << name;

    result->measured = Compare(store->get(), truth_);
    Print(name.c_str(), result->measured);
  }

  // The targets: precision and recall of the links at least 99.9 %, and exactly right
  // bounces, recipients' statuses and cleanup's refusals.
  static void ExpectTargets(const std::string& name, const Measured& m) {
    EXPECT_GE(m.precision, 0.999) << name;
    EXPECT_GE(m.recall, 0.999) << name;
    EXPECT_GT(m.bounces_true, 0u);
    EXPECT_EQ(m.bounces_found, m.bounces_true) << name;
    EXPECT_EQ(m.statuses_right, m.statuses_checked) << name;
    EXPECT_EQ(m.refusals_right, m.refusals_true) << name;
    EXPECT_EQ(m.refusals_extra, 0u) << name;
  }

  // Imports each host's log, host by host in each of `orders`; `rotated`: the two files
  // RotateLogs made of it instead, the newer first (as `maillens import mail.log*` takes them).
  void ImportInHostOrders(const std::vector<std::vector<std::string>>& orders,
                          bool rotated = false) {
    for (const auto& order : orders) {
      std::string name;
      std::vector<std::string> files;
      for (const std::string& host : order) {
        name += (name.empty() ? "" : ",") + host;
        if (rotated) {
          files.push_back(host + ".log.0");
          files.push_back(host + ".log.1");
        } else {
          files.push_back(host + ".log");
        }
      }
      if (rotated) name += ", rotated files newest first";
      RunResult result;
      ImportAndCompare(name, files, &result);
      if (HasFatalFailure()) return;
      ExpectTargets(name, result.measured);
    }
  }

  // Cuts each host's log in two, as logrotate would: HOST.log.1 the older lines (about the
  // first `share` of them), HOST.log.0 the rest, with the log's modification time. The cut
  // falls between two stamps: the importer takes a line equal to one of another file of the
  // host at the same time for the same line, seen twice.
  void RotateLogs(double share) {
    for (const auto& [host, n] : summary_.lines_per_host) {
      std::ifstream in(logs_ / (host + ".log"));
      std::ofstream older(logs_ / (host + ".log.1")), newer(logs_ / (host + ".log.0"));
      const int64_t cut = static_cast<int64_t>(static_cast<double>(n) * share);
      const std::string host_field = " " + host + " ";
      std::string line, last_stamp;
      bool cut_yet = false;
      for (int64_t i = 0; std::getline(in, line); ++i) {
        const std::string stamp = line.substr(0, line.find(host_field));
        cut_yet = cut_yet || (i >= cut && stamp != last_stamp);
        (cut_yet ? newer : older) << line << '\n';
        last_stamp = stamp;
      }
    }
    for (const char* suffix : {".log.0", ".log.1"}) {
      for (const auto& [host, n] : summary_.lines_per_host) {
        const fs::path path = logs_ / (host + suffix);
        ASSERT_TRUE(fs::exists(path)) << path;
        fs::last_write_time(path, fs::last_write_time(logs_ / (host + ".log")));
      }
    }
  }

  fs::path dir_, logs_;
  tools::SimulatorSummary summary_;
  Truth truth_;
};

// Lines of `path` that contain every one of `words`.
int64_t CountLines(const fs::path& path, const std::vector<std::string>& words) {
  std::ifstream in(path);
  std::string line;
  int64_t n = 0;
  while (std::getline(in, line)) {
    bool all = true;
    for (const std::string& w : words) all = all && line.find(w) != std::string::npos;
    n += all;
  }
  return n;
}

TEST_F(CorrelationAccuracyTest, SimulatedSiteInEitherImportOrder) {
  ASSERT_NO_FATAL_FAILURE(SimulateSite("private", ThreeHostSite(20241231, 520000)));
  ASSERT_GE(summary_.lines, 500000);
  ASSERT_GT(summary_.reused_queue_ids, 0);
  ASSERT_GT(summary_.foreign_collisions, 0);
  ImportInHostOrders({{"dmz", "mx", "out"}, {"out", "mx", "dmz"}});
}

// The same site on loopback addresses of one machine (tools/simulator.h, loopback_hosts): our
// hosts relay to each other on 127.0.0.2-4, a foreign Postfix answers "queued as X" (X at
// times one of our IDs) on 127.0.0.25, and half of amavis's replies do not say that they come
// from a content filter. A relay to a loopback address that no host claims yet must wait for
// its far side (docs/CORRELATION.md, "Arrival order"): the sender first and the receivers
// first give the same links.
TEST_F(CorrelationAccuracyTest, LoopbackSiteInEitherImportOrder) {
  tools::SimulatorOptions sim = ThreeHostSite(20261207, 200000);
  sim.loopback_hosts = true;
  ASSERT_NO_FATAL_FAILURE(SimulateSite("loopback", sim));
  ASSERT_GT(summary_.foreign_collisions, 0);
  // What makes the site hard is in the logs: hops between our hosts over loopback, a foreign
  // Postfix on loopback answering "queued as" (out delivers the internet's mail), and amavis
  // answering like any Postfix.
  const fs::path& logs = logs_;
  const int64_t to_out =
      CountLines(logs / "dmz.log", {"relay=out.", "[127.0.0.4]:25", "queued as"});
  const int64_t to_foreign =
      CountLines(logs / "out.log", {"[127.0.0.25]:25", "status=sent", "queued as"});
  const int64_t plain_filter = CountLines(
      logs / "dmz.log", {"relay=127.0.0.1[127.0.0.1]:10024", "status=sent (250 2.0.0 Ok: queued"});
  std::printf(
      "%lld hops dmz -> out, %lld out -> foreign MTA on loopback, %lld plain filter replies\n",
      static_cast<long long>(to_out), static_cast<long long>(to_foreign),
      static_cast<long long>(plain_filter));
  ASSERT_GT(to_out, 0);
  ASSERT_GT(to_foreign, 0);
  ASSERT_GT(plain_filter, 0);
  ImportInHostOrders({{"dmz", "mx", "out"}, {"out", "mx", "dmz"}});
}

// Expiries logged after their message's `removed` whose queue ID the host's next message
// takes: (late expiries, of them followed by a client= of the same ID).
std::pair<int64_t, int64_t> LateExpiriesReused(const fs::path& path) {
  std::ifstream in(path);
  std::string line;
  std::map<std::string, std::string> last;  // queue ID -> what its last line was
  int64_t late = 0, reused = 0;
  while (std::getline(in, line)) {
    size_t colon = line.find("]: ");
    if (colon == std::string::npos) continue;
    std::string rest = line.substr(colon + 3);
    size_t end = rest.find(": ");
    if (end == std::string::npos) continue;
    std::string qid = rest.substr(0, end), what = rest.substr(end + 2);
    std::string& before = last[qid];
    if (what.find("status=expired") != std::string::npos && before == "removed") {
      ++late;
      what = "late expiry";
    } else if (what.rfind("client=", 0) == 0 && before == "late expiry") {
      ++reused;
    }
    before = what;
  }
  return {late, reused};
}

// Mail that cleanup refuses (header/body check REJECT and DISCARD, milter reject: final,
// with sender and recipient), and expiries logged after `removed` whose queue ID is taken
// right after by a new message (which must not join the old one): both import orders.
TEST_F(CorrelationAccuracyTest, CleanupRefusalsAndLateExpiriesInEitherImportOrder) {
  tools::SimulatorOptions sim = ThreeHostSite(20261208, 150000);
  sim.mix.content_check = 8;
  sim.expire_rate = 0.03;
  sim.expiry_after_removed_rate = 0.5;
  ASSERT_NO_FATAL_FAILURE(SimulateSite("cleanup", sim));
  const fs::path& logs = logs_;
  const int64_t header = CountLines(logs / "dmz.log", {"postfix/cleanup[", ": reject: header "});
  const int64_t body = CountLines(logs / "dmz.log", {"postfix/cleanup[", ": reject: body "});
  const int64_t milter = CountLines(logs / "dmz.log", {"postfix/cleanup[", ": milter-reject: "});
  const int64_t discard = CountLines(logs / "dmz.log", {"postfix/cleanup[", ": discard: "});
  int64_t late = 0, late_reused = 0;
  for (const char* host : {"dmz.log", "mx.log"}) {
    auto [l, r] = LateExpiriesReused(logs / host);
    late += l;
    late_reused += r;
  }
  std::printf(
      "cleanup: %lld header rejects, %lld body rejects, %lld milter rejects, %lld discards; "
      "%lld expiries after removed, %lld of their IDs taken by the next message\n",
      static_cast<long long>(header), static_cast<long long>(body), static_cast<long long>(milter),
      static_cast<long long>(discard), static_cast<long long>(late),
      static_cast<long long>(late_reused));
  ASSERT_GT(header, 0);
  ASSERT_GT(body, 0);
  ASSERT_GT(milter, 0);
  ASSERT_GT(discard, 0);
  ASSERT_GT(late_reused, 0);
  ASSERT_EQ(truth_.dispositions.size(), static_cast<size_t>(header + body + milter + discard));
  ImportInHostOrders({{"dmz", "mx", "out"}, {"out", "mx", "dmz"}});
  // Each log rotated at its middle and the files imported newest first: the lines of a queue
  // ID reused across the cut arrive out of order (see ExtractsCopiesAndNonMaillogs...).
  ASSERT_NO_FATAL_FAILURE(RotateLogs(0.5));
  ImportInHostOrders({{"dmz", "mx", "out"}, {"out", "mx", "dmz"}}, /*rotated=*/true);
}

// Each host's log imported with an extract of it (from its middle) and a syslog server's copy
// of its tail, byte for byte the log's lines, in both orders (extract and copy first, the log
// first) and with the hosts in both orders, plus a Dovecot log_path file and a note in plain
// text that are no maillogs, after the first host. On the loopback site with cleanup refusals
// and late expiries, so that the overlap meets all the hard cases. In every run each line of
// the logs is stored once, each extra line counted as already present, and the non-maillogs
// are refused and make no host (ImportAndCompare); and the traces are those of the logs alone.
//
// With the extract first, the lines of a reused queue ID arrive out of order. On mx, queue ID
// Q has two lives: the first ends with `removed`, the second is deferred again and again, and
// mx.extract.log starts among its retries. Imported first, the extract makes an instance of Q
// without a start line; the log, imported after, brings the first life's client= line,
// earlier than that instance, which joins it (Correlator::FindOrCreate: an earlier line joins
// a later instance that has no start line of its own). The first life's `removed` shows that
// guess wrong: the instance holds lines hours after it. The correlator then reads the lines
// of the span again and takes them in time order (Correlator::Untangle), so the second life
// keeps its expiry and bounce. Rotated logs imported newest first (`maillens import mail.log
// mail.log.1`) meet the same case.
TEST_F(CorrelationAccuracyTest, ExtractsCopiesAndNonMaillogsInEitherImportOrder) {
  tools::SimulatorOptions sim = ThreeHostSite(20261209, 100000);
  sim.loopback_hosts = true;
  sim.mix.content_check = 8;
  sim.expire_rate = 0.03;
  sim.expiry_after_removed_rate = 0.5;
  sim.extra_files.extracts = true;       // 30 % to 60 % of each log
  sim.extra_files.syslog_copies = true;  // 80 % to the end
  sim.extra_files.non_maillogs = true;
  ASSERT_NO_FATAL_FAILURE(SimulateSite("extracts", sim));
  std::map<std::string, std::vector<std::string>> extras_of;  // host -> its extract and copy
  std::vector<std::string> non_maillogs;
  for (const tools::ExtraFile& f : summary_.extra_files) {
    std::printf("%s: %lld lines%s\n", f.name.c_str(), static_cast<long long>(f.lines),
                f.host.empty() ? ", not a maillog" : "");
    ASSERT_GT(f.lines, 0) << f.name;
    (f.host.empty() ? non_maillogs : extras_of[f.host]).push_back(f.name);
  }
  ASSERT_EQ(non_maillogs.size(), 2u);
  for (const auto& [host, n] : summary_.lines_per_host) ASSERT_EQ(extras_of[host].size(), 2u);

  // The logs alone: what the extra files must not change.
  RunResult alone;
  ASSERT_NO_FATAL_FAILURE(ImportAndCompare("logs alone", {"dmz.log", "mx.log", "out.log"}, &alone));
  ExpectTargets("logs alone", alone.measured);
  for (const std::vector<std::string>& hosts :
       std::vector<std::vector<std::string>>{{"dmz", "mx", "out"}, {"out", "mx", "dmz"}}) {
    for (const bool log_first : {true, false}) {
      std::string name = log_first ? "log first" : "extracts first";
      std::vector<std::string> files;
      for (const std::string& host : hosts) {
        name += (host == hosts[0] ? ": " : ",") + host;
        if (log_first) files.push_back(host + ".log");
        files.insert(files.end(), extras_of[host].begin(), extras_of[host].end());
        if (!log_first) files.push_back(host + ".log");
        // After the first host: the store that refuses them already holds lines and hosts.
        if (host == hosts[0]) files.insert(files.end(), non_maillogs.begin(), non_maillogs.end());
      }
      RunResult run;
      ASSERT_NO_FATAL_FAILURE(ImportAndCompare(name, files, &run));
      EXPECT_GT(run.extra_lines, 0u) << name;
      ExpectTargets(name, run.measured);
      // The traces of the logs alone: the same links found and right, the same statuses right,
      // the same message instances on each host (a line stored twice, or placed a year off,
      // would make instances of its own).
      EXPECT_EQ(run.measured.links_found, alone.measured.links_found) << name;
      EXPECT_EQ(run.measured.links_correct, alone.measured.links_correct) << name;
      EXPECT_EQ(run.measured.statuses_right, alone.measured.statuses_right) << name;
      EXPECT_EQ(run.measured.refusals_right, alone.measured.refusals_right) << name;
      EXPECT_EQ(run.host_messages, alone.host_messages) << name;
    }
  }
}

}  // namespace
}  // namespace maillens
