// Correlation accuracy against the simulator's ground truth: a three-host site with content
// filtering, queue-ID reuse, foreign IDs that collide with ours, clock skew, both stamp forms,
// and a midnight and new-year crossing, once on private addresses and once on loopback
// addresses of one machine; imported host by host in two different orders. Prints
// precision and recall of hop links and the share of recipients whose final status is right,
// and asserts the targets.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "collector/importer.h"
#include "collector/store.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
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

Measured Compare(collector::Store* store, const Truth& truth) {
  Measured m;
  auto traces = store->TracesIn(INT64_MIN, INT64_MAX);
  EXPECT_TRUE(traces.ok()) << traces.status();
  std::set<LinkKey> found;
  std::map<InstanceKey, std::map<std::string, std::string>> statuses;
  std::map<InstanceKey, const collector::MessageInfo*> messages;
  for (const collector::Trace& t : *traces) {
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
    const collector::MessageInfo* msg = it == messages.end() ? nullptr : it->second;
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

// Imports each host's log of the simulated site in `dir`/logs, host by host in each of
// `orders`, and asserts the targets against the truth.
void ImportInOrdersAndCompare(const fs::path& dir, const Truth& truth,
                              const std::vector<std::vector<std::string>>& orders) {
  for (const auto& order : orders) {
    std::string name;
    for (const std::string& host : order) name += (name.empty() ? "" : ",") + host;
    fs::path data = dir / ("data_" + order[0]);
    fs::remove_all(data);
    collector::StoreOptions store_options;
    store_options.dir = data.string();
    store_options.durable = false;
    store_options.correlate_behind = true;  // as maillens import
    store_options.behind_depth = 4;
    auto store = collector::Store::Open(store_options);
    ASSERT_TRUE(store.ok()) << store.status();
    for (const std::string& host : order) {
      collector::ImportOptions import;
      import.year = 2024;  // the year of each file's first classic stamp
      import.zone = absl::FixedTimeZone(3600);
      auto stats =
          collector::ImportFile(store->get(), (dir / "logs" / (host + ".log")).string(), import);
      ASSERT_TRUE(stats.ok()) << stats.status();
      EXPECT_EQ(stats->unparsed, 0u) << host;
    }
    Measured m = Compare(store->get(), truth);
    Print(name.c_str(), m);
    EXPECT_GE(m.precision, 0.999) << name;
    EXPECT_GE(m.recall, 0.999) << name;
    EXPECT_EQ(m.bounces_found, m.bounces_true) << name;
    EXPECT_GT(m.bounces_true, 0u);
    EXPECT_EQ(m.statuses_right, m.statuses_checked) << name;
    EXPECT_EQ(m.refusals_right, m.refusals_true) << name;
    EXPECT_EQ(m.refusals_extra, 0u) << name;
  }
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

TEST(CorrelationAccuracyTest, SimulatedSiteInEitherImportOrder) {
  fs::path dir = fs::temp_directory_path() / ("maillens_accuracy_" + std::to_string(getpid()));
  fs::remove_all(dir);
  tools::SimulatorOptions sim;
  sim.seed = 20241231;
  sim.target_lines = 520000;
  sim.start = absl::FromUnixSeconds(1735682400);  // 2024-12-31T22:00:00Z
  sim.duration = absl::Hours(4);                  // across midnight and the new year
  sim.zone_offset = absl::Hours(1);
  sim.hosts = {{"dmz", absl::ZeroDuration(), tools::StampForm::kClassic, false},
               {"mx", absl::Seconds(90), tools::StampForm::kRfc3339, false},
               {"out", absl::Seconds(-75), tools::StampForm::kClassicZeroPadded, true}};
  auto summary = tools::SimulateToDirectory(sim, (dir / "logs").string());
  ASSERT_TRUE(summary.ok()) << summary.status();
  PrintSummary(*summary);
  ASSERT_GE(summary->lines, 500000);
  ASSERT_GT(summary->reused_queue_ids, 0);
  ASSERT_GT(summary->foreign_collisions, 0);
  Truth truth = ReadTruth((dir / "logs" / "truth.jsonl").string());
  ASSERT_EQ(truth.links.size(), static_cast<size_t>(summary->links));
  ImportInOrdersAndCompare(dir, truth, {{"dmz", "mx", "out"}, {"out", "mx", "dmz"}});
  fs::remove_all(dir);
}

// The same site on loopback addresses of one machine (tools/simulator.h, loopback_hosts): our
// hosts relay to each other on 127.0.0.2-4, a foreign Postfix answers "queued as X" (X at
// times one of our IDs) on 127.0.0.25, and half of amavis's replies do not say that they come
// from a content filter. A relay to a loopback address that no host claims yet must wait for
// its far side (docs/CORRELATION.md, "Arrival order"): the sender first and the receivers
// first give the same links.
TEST(CorrelationAccuracyTest, LoopbackSiteInEitherImportOrder) {
  fs::path dir =
      fs::temp_directory_path() / ("maillens_accuracy_loopback_" + std::to_string(getpid()));
  fs::remove_all(dir);
  tools::SimulatorOptions sim;
  sim.seed = 20261207;
  sim.target_lines = 200000;
  sim.start = absl::FromUnixSeconds(1735682400);
  sim.duration = absl::Hours(4);
  sim.zone_offset = absl::Hours(1);
  sim.loopback_hosts = true;
  sim.hosts = {{"dmz", absl::ZeroDuration(), tools::StampForm::kClassic, false},
               {"mx", absl::Seconds(90), tools::StampForm::kRfc3339, false},
               {"out", absl::Seconds(-75), tools::StampForm::kClassicZeroPadded, true}};
  auto summary = tools::SimulateToDirectory(sim, (dir / "logs").string());
  ASSERT_TRUE(summary.ok()) << summary.status();
  PrintSummary(*summary);
  ASSERT_GT(summary->foreign_collisions, 0);
  // What makes the site hard is in the logs: hops between our hosts over loopback, a foreign
  // Postfix on loopback answering "queued as" (out delivers the internet's mail), and amavis
  // answering like any Postfix.
  const fs::path logs = dir / "logs";
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
  Truth truth = ReadTruth((dir / "logs" / "truth.jsonl").string());
  ASSERT_EQ(truth.links.size(), static_cast<size_t>(summary->links));
  ImportInOrdersAndCompare(dir, truth, {{"dmz", "mx", "out"}, {"out", "mx", "dmz"}});
  fs::remove_all(dir);
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
TEST(CorrelationAccuracyTest, CleanupRefusalsAndLateExpiriesInEitherImportOrder) {
  fs::path dir =
      fs::temp_directory_path() / ("maillens_accuracy_cleanup_" + std::to_string(getpid()));
  fs::remove_all(dir);
  tools::SimulatorOptions sim;
  sim.seed = 20261208;
  sim.target_lines = 150000;
  sim.start = absl::FromUnixSeconds(1735682400);
  sim.duration = absl::Hours(4);
  sim.zone_offset = absl::Hours(1);
  sim.mix.content_check = 8;
  sim.expire_rate = 0.03;
  sim.expiry_after_removed_rate = 0.5;
  sim.hosts = {{"dmz", absl::ZeroDuration(), tools::StampForm::kClassic, false},
               {"mx", absl::Seconds(90), tools::StampForm::kRfc3339, false},
               {"out", absl::Seconds(-75), tools::StampForm::kClassicZeroPadded, true}};
  auto summary = tools::SimulateToDirectory(sim, (dir / "logs").string());
  ASSERT_TRUE(summary.ok()) << summary.status();
  PrintSummary(*summary);
  const fs::path logs = dir / "logs";
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
  Truth truth = ReadTruth((logs / "truth.jsonl").string());
  ASSERT_EQ(truth.links.size(), static_cast<size_t>(summary->links));
  ASSERT_EQ(truth.dispositions.size(), static_cast<size_t>(header + body + milter + discard));
  ImportInOrdersAndCompare(dir, truth, {{"dmz", "mx", "out"}, {"out", "mx", "dmz"}});
  fs::remove_all(dir);
}

}  // namespace
}  // namespace maillens
